import Testing
import RealModule
@testable import Scalars

/// The derivative rule of every `Real` function, checked against a central
/// difference in MPFloat<512> with step 2⁻¹⁶⁰ (truncation ≈ 2⁻³²⁰, rounding
/// ≈ 2⁻³⁵⁰: far below both Double and MPFloat<256> precision). The reference is
/// thus independent of the rules under test.
enum Fn: CaseIterable {
    case exp, expm1, cosh, sinh, tanh, cos, sin, tan, log, log1p, acosh, asinh, atanh, acos, asin, atan
    case powXY, powYX, powN, sqrt, root3, atan2y, atan2x, erf, erfc, exp2, exp10, hypot, gamma, log2, log10, logGamma
    case rational, gammaNegative

    /// f evaluated at x, with the domain shifted where needed.
    func eval<T: Real>(_ x: T) -> T {
        switch self {
        case .exp: return .exp(x)
        case .expm1: return .expMinusOne(x)
        case .cosh: return .cosh(x)
        case .sinh: return .sinh(x)
        case .tanh: return .tanh(x)
        case .cos: return .cos(x)
        case .sin: return .sin(x)
        case .tan: return .tan(x)
        case .log: return .log(x)
        case .log1p: return .log(onePlus: x)
        case .acosh: return .acosh(x + 1)
        case .asinh: return .asinh(x)
        case .atanh: return .atanh(x / 3)
        case .acos: return .acos(x / 3)
        case .asin: return .asin(x / 3)
        case .atan: return .atan(x)
        case .powXY: return .pow(x, T(13) / 10 + x / 7)     // both arguments vary
        case .powYX: return .pow(T(17) / 10, x)
        case .powN: return .pow(x, 5)
        case .sqrt: return .sqrt(x)
        case .root3: return .root(x, 3)
        case .atan2y: return .atan2(y: x, x: T(7) / 10)
        case .atan2x: return .atan2(y: T(7) / 10, x: x)
        case .erf: return .erf(x)
        case .erfc: return .erfc(x)
        case .exp2: return .exp2(x)
        case .exp10: return .exp10(x)
        case .hypot: return .hypot(x, x * x - 1)
        case .gamma: return .gamma(x)
        case .log2: return .log2(x)
        case .log10: return .log10(x)
        case .logGamma: return .logGamma(x)
        case .rational: return (x * x - 3) / (x + 2) - x.squareRoot() * (x - T(1) / 3)
        case .gammaNegative: return .gamma(-x - T(1) / 5)
        }
    }
}

@Suite struct DualDerivatives {
    static let points: [Double] = [0.3, 0.7, 1.3, 2.5]

    static func reference(_ f: Fn, _ x: Double) -> MPFloat<512> {
        typealias R = MPFloat<512>
        let h = R(sign: .plus, exponent: -160, significand: 1)
        return (f.eval(R(x) + h) - f.eval(R(x) - h)) / (2 * h)
    }

    @Test(arguments: Fn.allCases)
    func doubleAndMPFloat(_ f: Fn) {
        for x in Self.points {
            let ref = Self.reference(f, x)
            let scale = max(1, abs(ref.doubleValue))
            let d = f.eval(Dual<Double>(x, 1))
            #expect(abs(d.tangent - ref.doubleValue) <= 1e-13 * scale, "\(f) at \(x): \(d.tangent) vs \(ref.doubleValue)")
            #expect(d.value == f.eval(x), "value channel is the plain evaluation")
            let m = f.eval(Dual<MPFloat<256>>(MPFloat<256>(x), 1))
            let err = (MPFloat<512>(m.tangent) - ref).magnitude.doubleValue
            #expect(err <= 0x1p-225 * scale, "\(f) at \(x) in MPFloat<256>: error \(err)")
        }
    }

    @Test func secondDerivativesByNesting() {
        // Dual<Dual<Double>>: d²/dx² of x³ at 2 is 12; of exp at 1 is e.
        let x = Dual<Dual<Double>>(Dual(2, 1), Dual(1, 0))
        #expect((x * x * x).tangent.tangent == 12)
        let y = Dual<Dual<Double>>(Dual(1, 1), Dual(1, 0))
        #expect(abs(Dual.exp(y).tangent.tangent - M_E) < 1e-15)
    }

    @Test func comparisonsFollowTheValue() {
        let a = Dual<Double>(1, 5), b = Dual<Double>(1, -3)
        #expect(a == b && !(a < b) && a.magnitude.tangent == 5 && (-a).magnitude.tangent == 5)
        #expect(Dual<Double>(-2, 1).magnitude.tangent == -1)
    }
}

private let M_E = 2.718281828459045
