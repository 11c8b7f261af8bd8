import Scalars
import RealModule

/// Errors of operator specifications.
public struct OperatorSpecError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A synthetic symmetric operator with an exactly known spectrum, addressable by a
/// spec string `KIND:key=value,key=value` (from the CLI and experiment files):
///
/// | spec | operator | exact eigenvalues |
/// |---|---|---|
/// | `diag:values=1;2;3` | diag(values) | the values |
/// | `diag:n=N,lo=A,hi=B[,dist=linear\|log]` | diag of N points from A to B | the points |
/// | `rotated:n=N,lo=A,hi=B[,dist=…]` | Q diag(·) Qᵀ, Q Haar-orthogonal from the seed (dense) | LAPACK on the stored matrix |
/// | `mp:n=N,ratio=R` | Wishart XᵀX/m, X m×N Gaussian, N/m = R (Marchenko–Pastur) | LAPACK on the stored matrix |
/// | `spiked:n=N[,spikes=5;4;3][,ratio=1]` | diag(spikes,0,…) + ZZᵀ/m, Z N×m Gaussian | LAPACK on the stored matrix |
/// | `powerlaw:n=N,alpha=A[,scale=S]` | diag(S·i^−A), i = 1…N | the values |
/// | `strakos:n=N[,lo=0.1,hi=100,rho=0.9]` | Strakoš's diagonal test matrix (clustered at the low end) | the values |
///
/// "Exact" means the spectrum of the operator as stored in the scalar type `T`:
/// diagonal operators are rounded into `T` elementwise and their eigenvalues are
/// those rounded values; dense operators are rounded into `T` and their spectrum is
/// computed by LAPACK `dsyevd` from the stored entries widened exactly to fp64
/// (backward error ≈ 1e-16‖A‖).
public struct OperatorSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable { case diag, rotated, mp, spiked, powerlaw, strakos }
    public var kind: Kind
    public var parameters: [String: String]
    public var text: String
    public var description: String { text }

    public static func parse(_ text: String) throws -> OperatorSpec {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let k = parts.first, let kind = Kind(rawValue: k.lowercased()) else {
            throw OperatorSpecError("unknown operator '\(parts.first ?? text)' in spec '\(text)' (known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var params: [String: String] = [:]
        if parts.count == 2 && !parts[1].isEmpty {
            for kv in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
                guard !kv.isEmpty else { throw OperatorSpecError("empty field (a doubled or trailing comma) in operator spec '\(text)'") }
                let p = kv.split(separator: "=", maxSplits: 1).map(String.init)
                guard p.count == 2, !p[0].isEmpty, !p[1].isEmpty else { throw OperatorSpecError("malformed field '\(kv)' in operator spec '\(text)' (expected key=value)") }
                guard params[p[0].lowercased()] == nil else { throw OperatorSpecError("'\(p[0])' appears twice in operator spec '\(text)'") }
                params[p[0].lowercased()] = p[1]
            }
        }
        let allowed: [Kind: Set<String>] = [
            .diag: ["values", "n", "lo", "hi", "dist"], .rotated: ["values", "n", "lo", "hi", "dist"],
            .mp: ["n", "ratio"], .spiked: ["n", "spikes", "ratio"], .powerlaw: ["n", "alpha", "scale"],
            .strakos: ["n", "lo", "hi", "rho"],
        ]
        if let bad = params.keys.sorted().first(where: { !allowed[kind]!.contains($0) }) {
            throw OperatorSpecError("unknown field '\(bad)' for operator '\(kind.rawValue)' (allowed: \(allowed[kind]!.sorted().joined(separator: ", ")))")
        }
        let spec = OperatorSpec(kind: kind, parameters: params, text: text)
        if spec.parameters["values"] == nil { try MemoryBudget.check(try spec.estimatedBytes(), "operator '\(text)'") }
        let values = try spec.baseValues()
        // Lanczos forms squared norms of vectors scaled by the spectrum: beyond 1e150
        // they overflow fp64 and every figure of a run would be inf or NaN.
        if let bad = values.first(where: { !($0.magnitude <= maxMagnitude) }) {
            throw OperatorSpecError("the spec defines the eigenvalue \(bad); eigenvalues must be finite and at most \(maxMagnitude) in magnitude (spec '\(text)')")
        }
        try MemoryBudget.check(try spec.estimatedBytes(), "operator '\(text)'")
        return spec
    }

    /// The largest eigenvalue magnitude a spec may define.
    public static let maxMagnitude = 1e150

    /// The fp64 arrays the definition and its exact spectrum hold at once (a lower
    /// bound of the operator's memory; a run adds its vectors and their format).
    func estimatedBytes() throws -> Double {
        switch kind {
        case .diag, .powerlaw, .strakos:
            let n = Double(parameters["values"] == nil ? try int("n") : try baseValues().count)
            return 8 * 3 * n
        case .rotated:
            let n = Double(parameters["values"] == nil ? try int("n") : try baseValues().count)
            return 8 * 3 * n * n
        case .mp, .spiked:
            let n = Double(try int("n")), m = try inner(n)
            return 8 * (2 * m * n + 2 * n * n)
        }
    }

    /// The inner dimension m = round(n / ratio) of the Wishart kinds, at least 1.
    func inner(_ n: Double) throws -> Double {
        let r = try double("ratio", default: kind == .spiked ? 1 : nil)
        if kind == .mp { guard r >= 1e-3 && r <= 100 else { throw OperatorSpecError("ratio must be in [0.001, 100] (n/ratio samples)") } }
        else { guard r > 0 && r <= 100 else { throw OperatorSpecError("ratio must be in (0, 100]") } }
        return max(1, (n / r).rounded())
    }

    func int(_ key: String, default d: Int? = nil, range: ClosedRange<Int> = 1...50_000_000) throws -> Int {
        guard let s = parameters[key] else {
            if let d { return d }
            throw OperatorSpecError("operator '\(kind.rawValue)' needs \(key)= (spec '\(text)')")
        }
        guard let v = Int(s), range.contains(v) else { throw OperatorSpecError("\(key)='\(s)' must be an integer in \(range.lowerBound)...\(range.upperBound) (spec '\(text)')") }
        return v
    }

    func double(_ key: String, default d: Double? = nil) throws -> Double {
        guard let s = parameters[key] else {
            if let d { return d }
            throw OperatorSpecError("operator '\(kind.rawValue)' needs \(key)= (spec '\(text)')")
        }
        guard let v = Double(s), v.isFinite else { throw OperatorSpecError("\(key)='\(s)' must be a finite number (spec '\(text)')") }
        return v
    }

    /// The defining eigenvalues (diagonal kinds) — validated, in fp64.
    func baseValues() throws -> [Double] {
        switch kind {
        case .diag, .rotated:
            if let v = parameters["values"] {
                let vals = try v.split(separator: ";", omittingEmptySubsequences: false).map { s -> Double in
                    guard let d = Double(s), d.isFinite else { throw OperatorSpecError("value '\(s)' in values= is not a finite number") }
                    return d
                }
                guard !vals.isEmpty else { throw OperatorSpecError("values= is empty") }
                return vals
            }
            let n = try int("n"), lo = try double("lo", default: 0), hi = try double("hi", default: 1)
            let dist = parameters["dist"] ?? "linear"
            guard hi >= lo else { throw OperatorSpecError("hi must be ≥ lo (spec '\(text)')") }
            switch dist {
            case "linear": return (0..<n).map { n == 1 ? lo : lo + (hi - lo) * Double($0) / Double(n - 1) }
            case "log":
                guard lo > 0 else { throw OperatorSpecError("dist=log needs lo > 0") }
                return (0..<n).map { n == 1 ? lo : lo * Double.pow(hi / lo, Double($0) / Double(n - 1)) }
            default: throw OperatorSpecError("dist='\(dist)' must be linear or log")
            }
        case .powerlaw:
            let n = try int("n"), a = try double("alpha"), s = try double("scale", default: 1)
            return (1...n).map { s * Double.pow(Double($0), -a) }
        case .strakos:
            let n = try int("n", range: 2...50_000_000), lo = try double("lo", default: 0.1), hi = try double("hi", default: 100)
            let rho = try double("rho", default: 0.9)
            guard rho > 0 && rho <= 1 else { throw OperatorSpecError("rho must be in (0, 1]") }
            return (1...n).map { i in lo + Double(i - 1) / Double(n - 1) * (hi - lo) * Double.pow(rho, Double(n - i)) }
        case .mp:
            _ = try int("n"); let r = try double("ratio")
            guard r >= 1e-3 && r <= 100 else { throw OperatorSpecError("ratio must be in [0.001, 100] (n/ratio samples)") }
            return []
        case .spiked:
            _ = try int("n"); let r = try double("ratio", default: 1)
            guard r > 0 && r <= 100 else { throw OperatorSpecError("ratio must be in (0, 100]") }
            if let s = parameters["spikes"] {
                let spikes = s.split(separator: ";", omittingEmptySubsequences: false)
                for v in spikes where Double(v).map({ !$0.isFinite }) ?? true { throw OperatorSpecError("spike '\(v)' is not a finite number") }
                return spikes.map { Double($0)! }
            }
            return []
        }
    }

    /// The operator in fp64 — a diagonal or a dense symmetric matrix — with its
    /// exact eigenvalues (ascending): the defining values for diagonal kinds,
    /// LAPACK `dsyevd` of the stored matrix for dense ones.
    public func matrix(seed: UInt64) throws -> (diagonal: [Double]?, dense: Matrix<Double>?, eigenvalues: [Double]) {
        let (diag, dense) = try definition(seed: seed)
        if let d = diag { return (d, nil, d.sorted()) }
        return (nil, dense, try SymmetricEigen.decompose(dense!, vectors: false).values)
    }

    /// The operator in fp64 without its spectrum: a diagonal or a dense matrix.
    func definition(seed: UInt64) throws -> (diagonal: [Double]?, dense: Matrix<Double>?) {
        var g = SplitMix64(seed: seed)
        var a: Matrix<Double>
        switch kind {
        case .diag, .powerlaw, .strakos:
            return (try baseValues(), nil)
        case .rotated:
            let vals = try baseValues()
            let n = vals.count
            // Haar orthogonal: QR of a Gaussian matrix (modified Gram–Schmidt, twice).
            var q = (0..<n).map { _ in (0..<n).map { _ in g.nextGaussian() } }
            for j in 0..<n {
                for _ in 0..<2 {
                    for k in 0..<j {
                        var dp = 0.0
                        for i in 0..<n { dp += q[k][i] * q[j][i] }
                        for i in 0..<n { q[j][i] -= dp * q[k][i] }
                    }
                }
                let nr = q[j].reduce(0) { $0 + $1 * $1 }.squareRoot()
                for i in 0..<n { q[j][i] /= nr }
            }
            a = Matrix<Double>(rows: n, cols: n)
            for i in 0..<n { for j in 0...i {
                var s = 0.0
                for k in 0..<n { s += q[k][i] * vals[k] * q[k][j] }
                a[i, j] = s; a[j, i] = s
            } }
        case .mp:
            let n = try int("n"), m = Int(try inner(Double(n)))
            let x = Matrix<Double>(rows: m, cols: n, storage: (0..<(m * n)).map { _ in g.nextGaussian() })
            a = Kernels.gemm(x.transposed(), x, accumulation: .blas)
            for i in 0..<a.storage.count { a.storage[i] /= Double(m) }
        case .spiked:
            let n = try int("n"), m = Int(try inner(Double(n)))
            let spikes = (parameters["spikes"] ?? "5;4;3").split(separator: ";").compactMap { Double($0) }
            let z = Matrix<Double>(rows: n, cols: m, storage: (0..<(n * m)).map { _ in g.nextGaussian() })
            a = Kernels.gemm(z, z.transposed(), accumulation: .blas)
            for i in 0..<a.storage.count { a.storage[i] /= Double(m) }
            for (i, s) in spikes.prefix(n).enumerated() { a[i, i] += s }
        }
        a.symmetrize()
        return (nil, a)
    }

    /// The operator in scalar type `T` and its exact eigenvalues (ascending, fp64):
    /// the spectrum of the operator as stored in `T`.
    public func build<T: ComputeScalar>(_: T.Type, seed: UInt64, accumulation: Accumulation = .recursive) throws -> (op: AnyOperator<T>, eigenvalues: [Double]) {
        let (diag, dense) = try definition(seed: seed)
        if let d = diag {
            let stored = d.map { T(roundingDouble: $0) }
            return (AnyOperator(DiagonalOperator(stored)), stored.map(\.doubleValue).sorted())
        }
        return try self.dense(dense!, accumulation)
    }

    func dense<T: ComputeScalar>(_ a: Matrix<Double>, _ acc: Accumulation) throws -> (op: AnyOperator<T>, eigenvalues: [Double]) {
        let stored = a.converted(to: T.self)
        let exact = try SymmetricEigen.decompose(stored.converted(to: Double.self), vectors: false).values
        return (AnyOperator(DenseOperator(stored, accumulation: acc)), exact)
    }
}

/// A type-erased operator (one indirect call per application, not per element).
public struct AnyOperator<T: ComputeScalar>: LinearOperator {
    public let dimension: Int
    @usableFromInline let applyBody: (_ x: [T], _ y: inout [T]) -> Void
    @inlinable
    public init<Op: LinearOperator>(_ op: Op) where Op.Scalar == T {
        dimension = op.dimension
        applyBody = { x, y in op.apply(x, into: &y) }
    }
    @inlinable public func apply(_ x: [T], into y: inout [T]) { applyBody(x, &y) }
}
