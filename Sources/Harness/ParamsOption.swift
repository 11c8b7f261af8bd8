import Models

/// `--params PATTERN` of hvp, slq, recommend, eigen and trace: the model restricted to
/// the tensors the pattern selects (``ParameterSubset``), the others held at their
/// values rounded into the policy's param format.
enum ParamsOption {
    static func restrict(_ m: any DifferentiableModel, pattern: String?, seed: UInt64, policy: PrecisionPolicy) throws -> any DifferentiableModel {
        guard let pattern else { return m }
        if m is ExternalModel { throw HarnessError("--params selects tensors of a built-in model; an external oracle serves its own parameters") }
        let param = try policy.arithmetic(policy.param)
        func open<M: DifferentiableModel>(_ m: M) throws -> any DifferentiableModel {
            try ParameterSubset(base: m, pattern: pattern, seed: seed, round: { param.round($0) })
        }
        do { return try open(m) } catch let e as ModelError { throw HarnessError(e.description) }
    }
}
