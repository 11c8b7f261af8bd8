import Models

/// `--params PATTERN` of hvp, slq, recommend, eigen and trace: the model restricted to
/// the tensors the pattern selects (``ParameterSubset``), the others held at their
/// values rounded into the policy's param format (as is a model spec's `subset=`).
enum ParamsOption {
    /// A spec's own `subset=` gets its fixed values rounded the same way; giving both is refused.
    static func restrict(_ m: any DifferentiableModel, pattern: String?, seed: UInt64, policy: PrecisionPolicy) throws -> any DifferentiableModel {
        let param = try policy.arithmetic(policy.param)
        guard let pattern else { return roundingFixedParameters(m) { param.round($0) } }
        if let s = m as? ParameterSubsetProtocol {
            throw HarnessError("--params '\(pattern)': the model spec already selects a subset (subset=\(s.pattern)); give it once")
        }
        do { return try Models.restrict(m, to: pattern, seed: seed, round: { param.round($0) }) } catch let e as ModelError { throw HarnessError(e.description) }
    }
}
