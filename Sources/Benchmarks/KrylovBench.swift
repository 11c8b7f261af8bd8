import Harness
import Scalars
import LinearAlgebra
import Krylov

/// `hessian-harness bench krylov`: Lanczos time per step on a diagonal operator
/// (n = 10⁶, m = 100 by default) with `none` and `full` reorthogonalization in
/// Float and Double, and the dense symmetric eigensolver (generic Householder+QL
/// vs LAPACK dsyevd) at n = 500 in Double. Median of `trials`.
public enum KrylovBench {
    public struct Row: Sendable { public var benchmark: String; public var type: String; public var seconds: Double }

    static func lanczos<T: ComputeScalar>(_: T.Type, n: Int, m: Int, policy: Reorthogonalization, trials: Int) throws -> Row {
        let (op, _) = try OperatorSpec.parse("diag:n=\(n),lo=0,hi=1").build(T.self, seed: 0)
        var g = ProbeGenerator(seed: 1, kind: .rademacher)
        let v = g.next(n).map { T(roundingDouble: $0) }
        var steps = 0
        let t = Timing.median(trials: trials) {
            let l = Lanczos.run(op, start: v, options: LanczosOptions(steps: m, reorthogonalization: policy, measureOrthogonality: false))
            steps = l.steps
        }
        return Row(benchmark: "lanczos_step n=\(n) m=\(m) reorth=\(policy.rawValue)", type: T.formatName, seconds: t / Double(steps))
    }

    public static func run(n: Int = 1_000_000, m: Int = 100, denseN: Int = 500, trials: Int = 3) throws -> [Row] {
        var rows: [Row] = []
        for policy in [Reorthogonalization.none, .full] {
            rows.append(try lanczos(Float.self, n: n, m: m, policy: policy, trials: trials))
            rows.append(try lanczos(Double.self, n: n, m: m, policy: policy, trials: trials))
        }
        var g = SplitMix64(seed: 3)
        var a = Matrix<Double>(rows: denseN, cols: denseN)
        for i in 0..<denseN { for j in 0...i { let x = g.nextUniform() - 0.5; a[i, j] = x; a[j, i] = x } }
        rows.append(Row(benchmark: "dense_eig n=\(denseN) vectors", type: "LAPACK dsyevd",
                        seconds: try Timing.median(trials: trials) { _ = try SymmetricEigen.decompose(a) }))
        rows.append(Row(benchmark: "dense_eig n=\(denseN) vectors", type: "generic tred2+QL (Double)",
                        seconds: try Timing.median(trials: trials) { _ = try SymmetricEigen.generic(a, vectors: true) }))
        rows.append(Row(benchmark: "dense_eig n=\(denseN) values", type: "LAPACK dsyevd",
                        seconds: try Timing.median(trials: trials) { _ = try SymmetricEigen.decompose(a, vectors: false) }))
        rows.append(Row(benchmark: "dense_eig n=\(denseN) values", type: "generic tred2+QL (Double)",
                        seconds: try Timing.median(trials: trials) { _ = try SymmetricEigen.generic(a, vectors: false) }))
        return rows
    }

    public static func render(_ rows: [Row]) -> String {
        "benchmark,type,seconds\n" + rows.map { "\($0.benchmark),\($0.type),\($0.seconds)" }.joined(separator: "\n") + "\n"
    }

    /// Top-k eigenvalues of a dense synthetic operator by Lanczos (fp64, full
    /// reorthogonalization, BLAS products), with the fewest steps (from 2k, in
    /// increments of k) whose top-k Ritz values are within `tol`·ρ of the exact
    /// eigenvalues; the time of that run (median of `trials`). The comparison script
    /// runs SciPy's eigsh on the same matrix (`hvp --model quadratic:SPEC` writes it).
    public static func topK(spec: String, seed: UInt64, k: Int, tol: Double, trials: Int) throws -> (seconds: Double, steps: Int, maxErr: Double) {
        let os = try OperatorSpec.parse(spec)
        let (_, dense, exact) = try os.matrix(seed: seed)
        guard let a = dense else { throw HarnessError("bench topk needs a dense operator (rotated, mp, spiked, powerlaw, strakos)") }
        guard k >= 1 && k <= a.rows else { throw HarnessError("bench topk: --k must be in 1...\(a.rows) (the operator's size; got \(k))") }
        let op = DenseOperator(a, accumulation: .blas)
        var g = ProbeGenerator(seed: seed, kind: .gaussian)
        let v = g.next(a.rows)
        let lam = exact.sorted(by: >).prefix(k)
        let rho = max(abs(exact.min() ?? 0), abs(exact.max() ?? 0))
        func err(_ m: Int) throws -> Double {
            let l = Lanczos.run(op, start: v, options: LanczosOptions(steps: m, reorthogonalization: .full, accumulation: .blas, measureOrthogonality: false))
            let ritz = try l.ritz().values.sorted(by: >)
            guard ritz.count >= k else { return .infinity }
            return zip(ritz.prefix(k), lam).map { abs($0 - $1) / rho }.max() ?? .infinity
        }
        var m = 2 * k
        while m < a.rows, try err(m) > tol { m += k }
        let e = try err(m)
        let t = Timing.median(trials: trials) {
            _ = Lanczos.run(op, start: v, options: LanczosOptions(steps: m, reorthogonalization: .full, accumulation: .blas, measureOrthogonality: false))
        }
        return (t, m, e)
    }
}
