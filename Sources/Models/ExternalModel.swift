import Foundation
import Scalars
import LinearAlgebra

/// The user's own model, computed by an outside process (``ExternalOracle``):
/// `external:CMD` in a model spec. Everything else — the perturbation rounded once
/// into the param format, FD schemes, ε choice, Lanczos/SLQ, CSV and manifests — is
/// the harness's.
///
/// θ is the oracle's (`parameters`); the seed is not used. The harness converts θ
/// from the policy's compute format to fp64 (exact for every format inside fp64) and
/// the oracle's gradient back into it: use `compute=fp64` to leave the oracle's
/// numbers as it computed them. The exact HVP is the oracle's own (`hvp`, in the
/// precision it states, fp64 in the examples), so the reference of an external model
/// is `fp64` or `none`, never an MPFR format.
///
/// An oracle that fails mid-run (``OracleError``) ends the process with exit status 2
/// and one line on standard error, through ``failureHandler``: the gradient has no
/// way to throw, and the commands write nothing until every number is in.
public struct ExternalModel: DifferentiableModel {
    public let oracle: ExternalOracle
    public var layout: ParameterLayout { oracle.hello.layout }
    public var sampleCount: Int { 1 }

    public init(command: String) throws {
        oracle = try ExternalOracle(command: command)
    }

    /// What a failed oracle does to the run; by default prints the error and exits with status 2.
    nonisolated(unsafe) public static var failureHandler: (OracleError) -> Never = { e in
        FileHandle.standardError.write(Data("error: \(e); nothing written\n".utf8))
        exit(2)
    }

    static func checked<R>(_ body: () throws -> R) -> R {
        do { return try body() } catch let e as OracleError { failureHandler(e) } catch {
            failureHandler(OracleError(command: "", "\(error)"))
        }
    }

    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        // One sample: a range either holds it (the whole loss) or is empty (a data-parallel rank with nothing to add).
        guard samples.contains(0) else { return (T.zero, [T](repeating: .zero, count: theta.count)) }
        let (loss, g) = Self.checked { try oracle.gradient(theta.map(\.doubleValue)) }
        return (T(roundingDouble: loss), g.map { T(roundingDouble: $0) })
    }

    public func initialParameters(seed: UInt64) -> [Double] {
        Self.checked { try oracle.parameters() }
    }

    public func checkExactHVP(format: String) throws {
        guard oracle.hello.servesHVP else {
            throw ModelError("the external oracle serves no exact HVP (its handshake says \"hvp\": false): use --reference none")
        }
        guard format == "fp64" else {
            throw ModelError("an external model's exact HVP is its oracle's own, in fp64: use --reference fp64 (or none), not \(format)")
        }
    }

    public func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) {
        // In a format narrower than fp64 the oracle's fp64 HVP is rounded into it; an MPFR reference it cannot give.
        do { try checkExactHVP(format: T.formatName.hasPrefix("mpfr") ? T.formatName : "fp64") } catch {
            Self.failureHandler(OracleError(command: oracle.command, "\(error)"))
        }
        let (_, g, hv) = Self.checked { try oracle.hvp(theta.map(\.doubleValue), v.map(\.doubleValue)) }
        return (g.map { T(roundingDouble: $0) }, hv.map { T(roundingDouble: $0) })
    }
}

extension ExternalModel {
    public func describe() -> ModelDescription {
        let h = oracle.hello
        let d: [String: Any] = [
            "type": "external",
            "oracle": ["command": oracle.command, "name": h.name, "dtype": h.dtype, "serves_hvp": h.servesHVP,
                       "protocol": "\(ExternalOracle.protocolName) version \(ExternalOracle.protocolVersion) (docs/ORACLE.md)"] as [String: Any],
            "loss": "computed by the oracle process; params.npy holds the parameters it served",
        ]
        return ModelDescription(family: "external", depth: 0, width: parameterCount, entries: d, parametersSource: "the oracle's")
    }
}
