import Foundation
import Testing
import CMPFR
@testable import Scalars

/// Opt-in exhaustive checks (all 2^32 float32 inputs, long MPFR sweeps):
/// `HH_EXHAUSTIVE=1 swift test -c release --filter Exhaustive`.
let exhaustive = ProcessInfo.processInfo.environment["HH_EXHAUSTIVE"] == "1"

/// Loads a committed golden CSV (first line is the generator's version comment,
/// second the header). Returns rows of fields.
func golden(_ name: String) throws -> [[Substring]] {
    let dir = try #require(Bundle.module.url(forResource: "Golden", withExtension: nil))
    let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
    var rows: [[Substring]] = []
    for (i, line) in text.split(separator: "\n").enumerated() where i >= 2 {
        rows.append(line.split(separator: ",", omittingEmptySubsequences: false))
    }
    return rows
}

func hex<T: FixedWidthInteger>(_ s: Substring, as: T.Type = T.self) -> T { T(s, radix: 16)! }

/// Same value and same sign of zero, or both NaN.
func same(_ a: Double, _ b: Double) -> Bool {
    (a.isNaN && b.isNaN) || (a == b && a.sign == b.sign)
}

/// A random value of `f`: a uniformly random encoding (NaN encodings skipped),
/// so every binade, subnormals and the extremes are equally likely.
func randomValue(_ f: FloatFormat, _ g: inout SplitMix64) -> Double {
    while true {
        let bits = g.next() & ((1 << UInt64(f.bitWidth)) - 1)
        let v = f.decode(bits)
        if !v.isNaN { return v }
    }
}

/// Operands for the arithmetic checks: mostly independent random values, with
/// cancellations, near neighbours and specials mixed in.
func operands(_ f: FloatFormat, _ g: inout SplitMix64) -> (Double, Double, Double) {
    let a = randomValue(f, &g)
    var b = randomValue(f, &g)
    let c = randomValue(f, &g)
    switch g.next() % 20 {
    case 0: b = -a
    case 1: b = a * (1 + f.machineEpsilon)
    case 2: b = 0
    case 3: b = .infinity
    case 4: b = a.isFinite ? Double(sign: .plus, exponent: a.exponent &- 3, significand: 1.5) : 1
    default: break
    }
    if !f.infinities && b.isInfinite { b = f.greatestFinite }
    let rb = FormatRounding.round(b, to: f, mode: .towardZero)
    return (a, rb.isNaN ? 1 : rb, c)
}

/// Runs an MPFR op on Double operands (set exactly at 64 bits) into the format.
func oracle(_ f: FloatFormat, _ mode: RoundingMode, _ xs: [Double],
            _ op: (UnsafeMutablePointer<__mpfr_struct>, [UnsafeMutablePointer<__mpfr_struct>], mpfr_rnd_t) -> Int32) -> Double {
    let ops = xs.map { MPFRScratch($0, precision: 64) }
    return withExtendedLifetime(ops) {
        MPFROracle.apply(to: f, mode: mode) { y, rnd in op(y, ops.map(\.x), rnd) }
    }
}

/// Checks + − × ÷ √ fma of `T` against MPFR on `count` random operand triples.
/// Returns the failures, described (empty when all agree).
func checkArithmetic<T: EmulatedFloat>(_ type: T.Type, count: Int, seed: UInt64) -> [String] {
    let f = T.format, mode = T.roundingMode
    var g = SplitMix64(seed: seed)
    var failures: [String] = []
    func check(_ name: String, _ got: T, _ want: Double, _ xs: [Double]) {
        if !same(got.doubleValue, want) && failures.count < 10 {
            failures.append("\(f.name) \(mode) \(name)\(xs): got \(got.doubleValue) want \(want)")
        }
    }
    for _ in 0..<count {
        let (a, b, c) = operands(f, &g)
        let ta = T(exactFloat: Float(a)), tb = T(exactFloat: Float(b)), tc = T(exactFloat: Float(c))
        check("add", ta + tb, oracle(f, mode, [a, b]) { mpfr_add($0, $1[0], $1[1], $2) }, [a, b])
        check("sub", ta - tb, oracle(f, mode, [a, b]) { mpfr_sub($0, $1[0], $1[1], $2) }, [a, b])
        check("mul", ta * tb, oracle(f, mode, [a, b]) { mpfr_mul($0, $1[0], $1[1], $2) }, [a, b])
        check("div", ta / tb, oracle(f, mode, [a, b]) { mpfr_div($0, $1[0], $1[1], $2) }, [a, b])
        check("sqrt", ta.magnitude.squareRoot(), oracle(f, mode, [abs(a)]) { mpfr_sqrt($0, $1[0], $2) }, [abs(a)])
        check("fma", tc.addingProduct(ta, tb), oracle(f, mode, [a, b, c]) { mpfr_fma($0, $1[0], $1[1], $1[2], $2) }, [a, b, c])
    }
    return failures
}

/// A user-defined format exercising the other options: no subnormals, no
/// infinities, saturating overflow.
enum P5NoSubnormalSaturating: FloatFormatSpec {
    static let format = FloatFormat(uncheckedName: "p5-nosub-sat", p: 5, emin: -6, emax: 7, subnormals: false, infinities: false, overflow: .saturate)
}
/// A user-defined IEEE-like format with a wide range and p = 13.
enum P13Wide: FloatFormatSpec {
    static let format = FloatFormat(uncheckedName: "p13", p: 13, emin: -100, emax: 100, subnormals: true, infinities: true, overflow: .infinity)
}
