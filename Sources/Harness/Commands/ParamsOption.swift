import Models

/// `--params PATTERN` of hvp, slq, recommend, eigen and trace: the model restricted to
/// the tensors the pattern selects (``ParameterSubset``), the others held at their
/// values rounded into the policy's param format.
enum ParamsOption {
    static func restrict(_ m: any DifferentiableModel, pattern: String?, seed: UInt64, policy: PrecisionPolicy) throws -> any DifferentiableModel {
        guard let pattern else { return m }
        let param = try policy.arithmetic(policy.param)
        do { return try Models.restrict(m, to: pattern, seed: seed, round: { param.round($0) }) } catch let e as ModelError { throw HarnessError(e.description) }
    }
}
