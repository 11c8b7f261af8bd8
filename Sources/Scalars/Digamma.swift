import RealModule

/// The digamma function ψ = Γ'/Γ, generic over `Real`, for the derivatives of
/// `gamma` and `logGamma` (which `Real` does not provide).
///
/// Method: reflection `ψ(x) = ψ(1−x) − π/tan(πx)` for `x < 1/2`, the recurrence
/// `ψ(x) = ψ(x+1) − 1/x` up to a threshold `x₀`, then the asymptotic series
/// `ψ(x) ≈ log x − 1/(2x) − Σ_{k=1}^{30} B₂ₖ/(2k x^{2k})` with the Bernoulli numbers
/// below (exact fractions from SymPy). `x₀` is chosen so the first omitted term is
/// below the type's ulp: about 7 for Double and 63 for 256 bits; it is capped at
/// 10⁵, so beyond about 1000 bits ψ is less accurate than the type.
public enum Digamma {
    static let bernoulli: [(String, String)] = [
        ("1", "6"),
        ("-1", "30"),
        ("1", "42"),
        ("-1", "30"),
        ("5", "66"),
        ("-691", "2730"),
        ("7", "6"),
        ("-3617", "510"),
        ("43867", "798"),
        ("-174611", "330"),
        ("854513", "138"),
        ("-236364091", "2730"),
        ("8553103", "6"),
        ("-23749461029", "870"),
        ("8615841276005", "14322"),
        ("-7709321041217", "510"),
        ("2577687858367", "6"),
        ("-26315271553053477373", "1919190"),
        ("2929993913841559", "6"),
        ("-261082718496449122051", "13530"),
        ("1520097643918070802691", "1806"),
        ("-27833269579301024235023", "690"),
        ("596451111593912163277961", "282"),
        ("-5609403368997817686249127547", "46410"),
        ("495057205241079648212477525", "66"),
        ("-801165718135489957347924991853", "1590"),
        ("29149963634884862421418123812691", "798"),
        ("-2479392929313226753685415739663229", "870"),
        ("84483613348880041862046775994036021", "354"),
        ("-1215233140483755572040304994079820246041491", "56786730"),
    ]

    /// A nonnegative decimal integer in `T`, 18 digits at a time.
    static func integer<T: Real>(_ s: String) -> T {
        var neg = false
        var digits = Substring(s)
        if digits.first == "-" { neg = true; digits = digits.dropFirst() }
        var r: T = 0
        let chunk: T = T(1_000_000_000_000_000_000 as Int)
        var i = digits.startIndex
        let firstLen = digits.count % 18 == 0 ? 18 : digits.count % 18
        var len = firstLen
        while i < digits.endIndex {
            let j = digits.index(i, offsetBy: len)
            let part = Int(digits[i..<j])!
            r = (len == 18 ? r * chunk : r * T.pow(10, len)) + T(part)
            i = j; len = 18
        }
        return neg ? -r : r
    }

    public static func psi<T: Real>(_ x: T) -> T {
        if x.isNaN { return x }
        if x < T(1) / 2 {
            if x == x.rounded(.down) { return .nan }            // poles at 0, −1, −2, …
            return psi(1 - x) - T.pi / T.tan(T.pi * x)
        }
        // Threshold from the first omitted term |B₆₂|/(62 x⁶²) ≈ 3.4e34 / x⁶².
        let bitsOfT = -T.log2(T.ulpOfOne)
        let bitsPlusOne: T = bitsOfT + 1
        let scaled: T = bitsPlusOne * T(30103) / T(100000)
        let log10x0: T = (T(3453) / T(100) + scaled) / T(62)
        let x0 = Swift.min(Swift.max(T(10), T.exp10(log10x0)), T(100_000))
        var acc: T = 0
        var y = x
        while y < x0 { acc -= 1 / y; y += 1 }
        var s = T.log(y) - 1 / (2 * y)
        let y2 = y * y
        var p = y2
        for (k, (num, den)) in bernoulli.enumerated() {
            let b2k: T = integer(num) / integer(den)
            let twoK = T(2 * (k + 1))
            s -= b2k / (twoK * p)
            p *= y2
        }
        return acc + s
    }
}
