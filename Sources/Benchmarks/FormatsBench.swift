import Harness
import Scalars
import LinearAlgebra
import Models

/// `hessian-harness bench formats`: one gradient of the MLP 64-128-10 (9,610
/// parameters, batch 64, tanh, recursive accumulation) with the compute type of every
/// format of the registry under every rounding mode it supports, reached as the
/// studies reach it (the format by name, the model as `any DifferentiableModel`), and
/// whether ``ScalarRegistry/specialized(_:_:)`` has a specialized instance for the
/// type (`path`: specialized or generic). Seconds are medians of `trials` runs after a
/// warm-up; `over_fp32` divides by the fp32 row (nearest).
public enum FormatsBench {
    public struct Row: Sendable { public var format: String; public var rounding: String; public var path: String; public var seconds: Double }

    struct Gradient: ScalarBody {
        let model: any DifferentiableModel, theta: [Double], trials: Int
        func run<T: ComputeScalar>(_: T.Type) throws -> (Bool, Double) {
            let t = ScalarArrays.rounding(theta, to: T.self)
            var sink = 0.0
            let s = Timing.median(trials: trials, warmUp: true) { sink += model.lossAndGradient(t, accumulation: .recursive).loss.doubleValue }
            if sink.isNaN && sink > 0 { print("") }
            return (ScalarRegistry.isSpecialized(T.self), s)
        }
    }

    public static func run(trials: Int = 5) throws -> [Row] {
        let data = try Dataset.teacherStudent(samples: 64, features: 64, classes: 10, seed: 4)
        let model: any DifferentiableModel = try MLP(widths: [64, 128, 10], activation: .tanh, data: data)
        let theta = model.initialParameters(seed: 5)
        var rows: [Row] = []
        for name in ScalarRegistry.names where !name.hasPrefix("mpfr") || name == "mpfr256" {
            for mode in RoundingMode.allCases {
                guard let (fast, s) = try? ScalarRegistry.run(format: name, rounding: mode, Gradient(model: model, theta: theta, trials: name.hasPrefix("mpfr") ? 1 : trials))
                else { continue }                              // a mode the format does not support
                rows.append(Row(format: name, rounding: mode.rawValue, path: fast ? "specialized" : "generic", seconds: s))
            }
        }
        let user = "p=4,emin=-6,emax=7"
        if let (fast, s) = try? ScalarRegistry.run(format: user, rounding: .nearest, Gradient(model: model, theta: theta, trials: trials)) {
            rows.append(Row(format: user, rounding: "nearest", path: fast ? "specialized" : "generic", seconds: s))
        }
        return rows
    }

    public static func render(_ rows: [Row]) -> String {
        let ref = rows.first { $0.format == "fp32" && $0.rounding == "nearest" }?.seconds ?? .nan
        return "format,rounding,path,seconds,over_fp32\n" + rows.map {
            "\"\($0.format)\",\($0.rounding),\($0.path),\($0.seconds),\($0.seconds / ref)"
        }.joined(separator: "\n") + "\n"
    }
}
