import RealModule

/// Elementary functions as the harness evaluates them in a study's scalar type.
///
/// `T.tanh` is swift-numerics' function, which for `Float` is the C library's
/// `tanhf`. That is neither correctly rounded nor the same everywhere: glibc 2.36's
/// `tanhf` differs from the correctly rounded binary32 tanh on about a quarter of
/// inputs in [2⁻¹², 10] (measured on 2·10⁶ random binary32 numbers), while glibc 2.41
/// ships a correctly rounded one, so an fp32 study would give different bits on
/// different Linux releases. The harness therefore evaluates tanh in `Float` with
/// ``Binary32Tanh`` (correctly rounded to nearest, hence the same on every machine,
/// like the emulated formats, which round one Double evaluation), and every other type
/// with its own `T.tanh`. ``Dual`` routes its value through here too, so a `Dual<Float>`
/// forward pass sees the same activations as the `Float` one.
public enum Elementary {
    @inlinable @inline(__always)
    public static func tanh<T: Real>(_ x: T) -> T {
        if T.self == Float.self { return unsafeBitCast(Binary32Tanh.tanh(unsafeBitCast(x, to: Float.self)), to: T.self) }
        return T.tanh(x)
    }
}
