/// Exact widenings of the 16-bit formats a checkpoint stores, by their bit patterns (no
/// dependence on a native `Float16`, which not every platform's Swift has).
public enum HalfPrecision {
    /// IEEE binary16 → binary32, exact: normals and subnormals keep their value, ±0 and
    /// ±∞ their sign, a NaN its payload (shifted into the high bits, as numpy and GGML's
    /// `ggml_fp16_to_fp32` do).
    @inlinable @inline(__always)
    public static func binary16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let e = UInt32(h >> 10) & 0x1F, m = UInt32(h & 0x3FF)
        if e == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | m << 13) }
        if e == 0 {
            let v = Float(m) * 0x1p-24                 // m < 2¹⁰: exact
            return sign != 0 ? -v : v
        }
        return Float(bitPattern: sign | (e + 112) << 23 | m << 13)   // bias 15 → 127
    }

    /// bfloat16 → binary32, exact (the high half of the binary32 pattern).
    @inlinable @inline(__always)
    public static func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}
