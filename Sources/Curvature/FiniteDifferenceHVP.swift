import Scalars
import LinearAlgebra
import Models

/// Finite-difference schemes of NUMERICS.md §3, with their stencils.
public enum FDScheme: String, CaseIterable, Sendable {
    /// `(g(θ+εv) − g(θ)) / ε`, truncation O(ε).
    case forward
    /// `(g(θ+εv) − g(θ−εv)) / 2ε`, truncation O(ε²).
    case central
    /// `(8[g(θ+εv) − g(θ−εv)] − [g(θ+2εv) − g(θ−2εv)]) / 12ε`, truncation O(ε⁴).
    case richardson

    /// Truncation order k of `err ≈ A εᵏ`.
    @inlinable public var order: Int { switch self { case .forward: 1; case .central: 2; case .richardson: 4 } }
    /// Multiples c of εv at which gradients are taken.
    ///
    /// Deliberately not `@inlinable` (issue 18): the Swift 6.3 optimizer outlines the
    /// three constant arrays of an inlinable getter into global objects named after the
    /// getter with a counter (`…offsetsSaySdGvgTv_`, `Tv0_`, `Tv1_`), with weak hidden
    /// linkage, in every module that optimizes its own copy of the getter, and it numbers
    /// them in the order it meets them. Curvature numbered forward, central, richardson;
    /// a client module that specialized the FD-HVP (Harness' `bench models`, and an
    /// earlier concretely typed `FDEngine`) numbered richardson, central, forward. The
    /// linker keeps one object per name, so the client read the richardson offsets for
    /// the forward scheme: four gradients at θ ± εv, θ ± 2εv and the quotient
    /// (g(θ+εv) − g(θ−εv))/ε, twice the HVP (the "-O difference" of issue 4). Compiled
    /// once, here, the getter has one set of objects. BuildChecksTests scans the release
    /// objects for any weak constant defined twice with different contents.
    public var offsets: [Double] { switch self { case .forward: [1, 0]; case .central: [1, -1]; case .richardson: [1, -1, 2, -2] } }
    /// Gradient evaluations per HVP.
    public var gradients: Int { offsets.count }
}

/// How ε is chosen (NUMERICS.md §3).
public enum StepPolicy: Sendable, Equatable, CustomStringConvertible {
    /// ε as given.
    case absolute(Double)
    /// ε = η‖θ‖₂/‖v‖₂, η dimensionless.
    case relative(Double)

    public var description: String {
        switch self { case .absolute(let e): "absolute:\(e)"; case .relative(let e): "relative:\(e)" }
    }

    /// Validates a step: finite and > 0.
    public static func make(kind: String, value: Double) throws -> StepPolicy {
        guard value.isFinite && value > 0 else { throw CurvatureError("ε must be a finite number > 0 (got \(value))") }
        switch kind {
        case "absolute": return .absolute(value)
        case "relative": return .relative(value)
        default: throw CurvatureError("unknown step policy '\(kind)' (known: absolute, relative)")
        }
    }

    @inlinable public func epsilon(theta: [Double], v: [Double]) -> Double {
        guard case .relative = self else { return epsilon(thetaNorm: 0, vNorm: 0) }
        return epsilon(thetaNorm: theta.reduce(0) { $0 + $1 * $1 }.squareRoot(), vNorm: v.reduce(0) { $0 + $1 * $1 }.squareRoot())
    }

    /// ε from the norms ‖θ‖₂ and ‖v‖₂ (ignored by `absolute`; η itself when either is 0).
    @inlinable public func epsilon(thetaNorm nt: Double, vNorm nv: Double) -> Double {
        switch self {
        case .absolute(let e): return e
        case .relative(let eta): return nt > 0 && nv > 0 ? eta * nt / nv : eta
        }
    }
}

public struct CurvatureError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The precision of each stage of an FD-HVP (NUMERICS.md §2): `param` rounds the
/// perturbed parameters, the gradient is computed in the compute type chosen by the
/// caller with matrix products under `accumulation`, `grad` rounds the gradient,
/// `hvp` forms the difference quotient.
public struct FDPrecision: Sendable {
    public var param: FormatArithmetic
    public var grad: FormatArithmetic
    public var hvp: FormatArithmetic
    public var accumulation: Accumulation
    public init(param: FormatArithmetic = .fp64, grad: FormatArithmetic = .fp64, hvp: FormatArithmetic = .fp64,
                accumulation: Accumulation = .recursive) {
        self.param = param; self.grad = grad; self.hvp = hvp; self.accumulation = accumulation
    }

    /// The contribution of `samples` to ∇L at θ (fp64 carriers of `param` values),
    /// computed in `T` under `accumulation` and rounded into the `grad` format: what
    /// every FD scheme, sharded or not, takes at each offset.
    @inlinable
    public func gradient<M: DifferentiableModel, T: ComputeScalar>(_ model: M, at theta: [Double], samples: Range<Int>,
                                                                 compute _: T.Type) -> [Double] {
        ScalarArrays.doubles(model.lossAndGradient(ScalarArrays.rounding(theta, to: T.self), samples: samples, accumulation: accumulation).gradient,
                             roundedBy: grad)
    }
}

public struct FDResult: Sendable {
    @inlinable public init(hv: [Double], epsilon: Double, delta: [Double], swampedFraction: Double) {
        self.hv = hv; self.epsilon = epsilon; self.deltaSource = .values(delta); self.swampedFraction = swampedFraction
    }

    /// A result whose δ is the Double difference `plus − θ` of a binary32 point and the
    /// θ it was perturbed from, formed when ``delta`` is read instead of in the FD's own
    /// pass (the fused fp32 path: the FD-HVP then writes no δ array; `plus` is the array
    /// its first gradient read). The same values as the eager `delta`.
    @inlinable public init(hv: [Double], epsilon: Double, plus: [Float], theta: [Double], swampedFraction: Double) {
        precondition(plus.count == theta.count, "FDResult: fl(θ + εv) and θ differ in length")
        self.hv = hv; self.epsilon = epsilon; self.deltaSource = .difference(plus: plus, theta: theta)
        self.swampedFraction = swampedFraction
    }

    @usableFromInline enum DeltaSource: Sendable {
        case values([Double])
        case difference(plus: [Float], theta: [Double])
    }
    @usableFromInline var deltaSource: DeltaSource

    /// The result of perturbing θ to `plus` = fl_param(θ + εv): δ and the swamped fraction.
    @inlinable public init(hv: [Double], epsilon: Double, theta: [Double], plus: [Double], v: [Double]) {
        var moving = 0, swamped = 0
        let n = v.count
        precondition(plus.count == n && theta.count == n, "FDResult: θ, fl(θ + εv) and v differ in length")
        let delta = [Double](unsafeUninitializedCapacity: n) { d, count in
            plus.withUnsafeBufferPointer { p in theta.withUnsafeBufferPointer { t in v.withUnsafeBufferPointer { vs in
                (moving, swamped) = Self.account(0..<n, plus: { p[$0] }, theta: t, v: vs, delta: d)
            } } }
            count = n
        }
        self.init(hv: hv, epsilon: epsilon, delta: delta, swampedFraction: Self.swampedFraction(moving: moving, swamped: swamped))
    }

    /// δᵢ = plusᵢ − θᵢ (fp64) written to `delta` for i in `range`, and the counts of
    /// moving (vᵢ ≠ 0) and swamped (moving, yet plusᵢ = θᵢ) components: the accounting
    /// every FD path does for the point fl_param(θ + εv). Branch-free.
    @inlinable @inline(__always)
    public static func account(_ range: Range<Int>, plus: (Int) -> Double, theta t: UnsafeBufferPointer<Double>,
                               v: UnsafeBufferPointer<Double>, delta d: UnsafeMutableBufferPointer<Double>) -> (moving: Int, swamped: Int) {
        var moving = 0, swamped = 0
        for i in range {
            let p = plus(i)
            d[i] = p - t[i]
            let moves: Int = v[i] != 0 ? 1 : 0, same: Int = p == t[i] ? 1 : 0
            moving &+= moves
            swamped &+= moves & same
        }
        return (moving, swamped)
    }

    /// swamped / moving, 0 when nothing moves.
    @inlinable public static func swampedFraction(moving: Int, swamped: Int) -> Double {
        moving > 0 ? Double(swamped) / Double(moving) : 0
    }
    /// The estimate ĥ.
    public var hv: [Double]
    /// ε actually used (after the step policy).
    public var epsilon: Double
    /// δ = fl_param(θ + εv) − θ, the perturbation actually applied (fp64). O(n) on
    /// every read when the result was made from the point (read it once).
    @inlinable public var delta: [Double] {
        get {
            switch deltaSource {
            case .values(let d): return d
            case .difference(let plus, let theta):
                return [Double](unsafeUninitializedCapacity: theta.count) { d, count in
                    plus.withUnsafeBufferPointer { p in theta.withUnsafeBufferPointer { t in
                        for i in 0..<t.count { d.initializeElement(at: i, to: Double(p[i]) - t[i]) }
                    } }
                    count = theta.count
                }
            }
        }
        set { deltaSource = .values(newValue) }
    }
    /// Share of components with vᵢ ≠ 0 and fl_param(θᵢ + εvᵢ) = θᵢ.
    public var swampedFraction: Double
}

public enum FiniteDifferenceHVP {
    /// `fl_param(θᵢ + c ε vᵢ)`, the exact value rounded once into the param format.
    @inlinable
    public static func perturb(_ theta: [Double], _ v: [Double], _ c: Double, _ eps: Double, _ param: FormatArithmetic) -> [Double] {
        let ce = c * eps                                   // c ∈ {±1, ±2}: exact scaling
        return [Double](unsafeUninitializedCapacity: theta.count) { out, count in
            theta.withUnsafeBufferPointer { t in v.withUnsafeBufferPointer { vs in
                for i in 0..<t.count { (out.baseAddress! + i).initialize(to: param.fma(t[i], ce, vs[i])) }
            } }
            count = theta.count
        }
    }

    /// The difference quotient of the gradients at the scheme's offsets (in the
    /// order of ``FDScheme/offsets``), each operation rounded into the `hvp` format.
    @inlinable
    public static func quotient(_ grads: [[Double]], scheme: FDScheme, epsilon eps: Double, hvp h: FormatArithmetic) -> [Double] {
        let n = grads[0].count
        let g0 = grads[0], g1 = grads[1]
        precondition(g1.count == n)
        return [Double](unsafeUninitializedCapacity: n) { hv, count in
            switch scheme {
            case .forward, .central:
                let d = h.round(scheme == .forward ? eps : 2 * eps)
                g0.withUnsafeBufferPointer { a in g1.withUnsafeBufferPointer { b in
                    for i in 0..<n { hv[i] = h.div(h.sub(a[i], b[i]), d) }
                } }
            case .richardson:
                let d = h.round(12 * eps)
                let g2 = grads[2], g3 = grads[3]
                for i in 0..<n {
                    let near = h.sub(g0[i], g1[i]), far = h.sub(g2[i], g3[i])
                    hv[i] = h.div(h.sub(h.mul(8, near), far), d)
                }
            }
            count = n
        }
    }

    /// FD-HVP of `model` at θ (values of the param format) along v, gradients in `T`.
    @inlinable
    public static func estimate<M: DifferentiableModel, T: ComputeScalar>(
        _ model: M, theta: [Double], v: [Double], scheme: FDScheme, step: StepPolicy,
        precision: FDPrecision, compute: T.Type
    ) -> FDResult {
        precondition(theta.count == v.count && theta.count == model.parameterCount)
        let eps = step.epsilon(theta: theta, v: v)
        if let F = T.self as? any FusedFDScalar.Type,       // fp32 throughout: the same values in fewer passes
           let r = F.fusedFD(model, theta: theta, v: v, scheme: scheme, epsilon: eps, precision: precision) {
            return r
        }
        return estimateByStages(model, theta: theta, v: v, scheme: scheme, epsilon: eps, precision: precision, compute: T.self)
    }

    /// The FD-HVP stage by stage in fp64 carriers (perturb, convert, gradient, round
    /// into `grad`, quotient), for every policy; ``estimate(_:theta:v:scheme:step:precision:compute:)``
    /// takes a fused path with the same values where it has one, and the tests
    /// compare the two.
    @inlinable
    public static func estimateByStages<M: DifferentiableModel, T: ComputeScalar>(
        _ model: M, theta: [Double], v: [Double], scheme: FDScheme, epsilon eps: Double,
        precision: FDPrecision, compute: T.Type
    ) -> FDResult {
        let (grads, plus) = gradientsAtOffsets(theta, v, scheme: scheme, epsilon: eps, param: precision.param) { p in
            precision.gradient(model, at: p, samples: 0..<model.sampleCount, compute: T.self)
        }
        return FDResult(hv: quotient(grads, scheme: scheme, epsilon: eps, hvp: precision.hvp), epsilon: eps,
                        theta: theta, plus: plus, v: v)
    }

    /// The gradients at the scheme's offsets: θ itself for offset 0, otherwise
    /// `fl_param(θ + cεv)`, each passed to `gradient`. Also returns fl_param(θ + εv).
    @inlinable
    public static func gradientsAtOffsets(_ theta: [Double], _ v: [Double], scheme: FDScheme, epsilon eps: Double,
                                          param: FormatArithmetic, gradient: ([Double]) -> [Double]) -> (grads: [[Double]], plus: [Double]) {
        var grads: [[Double]] = []
        var plus = theta
        for c in scheme.offsets {
            let p = c == 0 ? theta : perturb(theta, v, c, eps, param)
            if c == 1 { plus = p }
            grads.append(gradient(p))
        }
        return (grads, plus)
    }

    /// The same scheme entirely in `T` (perturbation, gradients and quotient all in
    /// T's own arithmetic): with T = MPFloat<256> this is the reference-format FD
    /// whose error against the exact HVP is pure truncation (`bias_rel`).
    @inlinable
    public static func estimateInFormat<M: DifferentiableModel, T: ComputeScalar>(
        _ model: M, theta: [T], v: [T], scheme: FDScheme, epsilon eps: T, accumulation: Accumulation = .recursive
    ) -> [T] {
        func g(_ c: T) -> [T] {
            model.lossAndGradient(zip(theta, v).map { $0 + c * eps * $1 }, accumulation: accumulation).gradient
        }
        switch scheme {
        case .forward:
            let a = g(1), b = g(0)
            return zip(a, b).map { ($0 - $1) / eps }
        case .central:
            let a = g(1), b = g(-1)
            return zip(a, b).map { ($0 - $1) / (2 * eps) }
        case .richardson:
            let a = g(1), b = g(-1), c = g(2), d = g(-2)
            let eight = T(8), den = T(12) * eps
            var out = [T](repeating: .zero, count: theta.count)
            for i in 0..<theta.count {
                let near: T = a[i] - b[i], far: T = c[i] - d[i]
                out[i] = (eight * near - far) / den
            }
            return out
        }
    }
}

/// The full Hessian of a small model from exact HVPs against basis vectors.
public enum FullHessian {
    /// H (n×n) in `T`, column j = H eⱼ by forward-over-reverse, and the symmetry
    /// defect ‖H − Hᵀ‖_F / ‖H‖_F.
    public static func compute<M: DifferentiableModel, T: ComputeScalar>(
        _ model: M, theta: [T], accumulation: Accumulation = .recursive
    ) -> (hessian: Matrix<T>, asymmetry: Double) {
        let n = model.parameterCount
        var h = Matrix<T>(rows: n, cols: n)
        for j in 0..<n {
            var e = [T](repeating: .zero, count: n)
            e[j] = 1
            let col = model.exactHVP(theta, e, accumulation: accumulation).hv
            for i in 0..<n { h[i, j] = col[i] }
        }
        var num = 0.0, den = 0.0
        for i in 0..<n { for j in 0..<n {
            let a = h[i, j].doubleValue, b = h[j, i].doubleValue
            num += (a - b) * (a - b); den += a * a
        } }
        return (h, den > 0 ? (num / den).squareRoot() : 0)
    }
}
