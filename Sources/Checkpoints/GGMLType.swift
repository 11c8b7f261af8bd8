/// The GGML tensor types this reader dequantizes, with GGML's numbers, block sizes and
/// byte sizes (ggml.h `ggml_type`, ggml-common.h `block_q*`).
///
/// Dequantization follows GGML's reference `dequantize_row_*` (ggml-quants.c), which the
/// `gguf` Python package's `quants.dequantize` reproduces in numpy: every operation in
/// binary32, the fp16 scale widened exactly. For Q4_1 the product `d·q` is exact (an
/// 11-bit significand times a 4-bit integer), so `d·q + m` rounds once whether or not a
/// compiler contracts it into an fma. The values are then widened exactly into `Double`,
/// the harness's fp64 carriers. Tests compare every type bit for bit with the Python
/// package's output on committed blocks (random bit patterns, SmolLM2's own blocks).
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q8_0 = 8
    case bf16 = 30

    public var description: String {
        switch self {
        case .f32: "F32"; case .f16: "F16"; case .q4_0: "Q4_0"; case .q4_1: "Q4_1"; case .q8_0: "Q8_0"; case .bf16: "BF16"
        }
    }

    /// Elements per block.
    public var blockSize: Int {
        switch self { case .f32, .f16, .bf16: 1; case .q4_0, .q4_1, .q8_0: 32 }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 2 + 16          // d, 32 nibbles
        case .q4_1: 2 + 2 + 16      // d, m, 32 nibbles
        case .q8_0: 2 + 32          // d, 32 int8
        }
    }

    /// Names of GGML types this reader does not dequantize, for the error message.
    public static func name(of raw: UInt32) -> String {
        let known: [UInt32: String] = [0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
                                       10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
                                       16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
                                       22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
                                       29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4"]
        return known[raw].map { "\(raw) (\($0))" } ?? "\(raw)"
    }

    /// Dequantizes `count` elements (a multiple of ``blockSize``) from `src` (exactly
    /// `count / blockSize · blockBytes` bytes) into binary32.
    @inlinable
    public func dequantize(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(count % blockSize == 0 && src.count == count / blockSize * blockBytes && dst.count >= count)
        @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: src.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        switch self {
        case .f32:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { dst[i] = HalfPrecision.binary16ToFloat(u16(2 * i)) }
        case .bf16:
            for i in 0..<count { dst[i] = HalfPrecision.bfloat16ToFloat(u16(2 * i)) }
        case .q8_0:
            for b in 0..<(count / 32) {
                let o = b * 34, d = HalfPrecision.binary16ToFloat(u16(o))
                for j in 0..<32 { dst[32 * b + j] = Float(Int8(bitPattern: src[o + 2 + j])) * d }
            }
        case .q4_0:
            for b in 0..<(count / 32) {
                let o = b * 18, d = HalfPrecision.binary16ToFloat(u16(o))
                for j in 0..<16 {
                    let q = src[o + 2 + j]
                    dst[32 * b + j] = Float(Int(q & 0x0F) - 8) * d
                    dst[32 * b + j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            for b in 0..<(count / 32) {
                let o = b * 20, d = HalfPrecision.binary16ToFloat(u16(o)), m = HalfPrecision.binary16ToFloat(u16(o + 2))
                for j in 0..<16 {
                    let q = src[o + 4 + j]
                    dst[32 * b + j] = Float(q & 0x0F) * d + m
                    dst[32 * b + j + 16] = Float(q >> 4) * d + m
                }
            }
        }
    }
}
