import Scalars

/// How a reduction (dot product, matrix-vector and matrix-matrix product, norm)
/// accumulates. Which implementation each policy takes:
///
/// | policy | element type | path |
/// |---|---|---|
/// | `recursive` | any | generic loop: `s ← fl(s + fl(xᵢ·yᵢ))` left to right, all in the element format (`MPFloat`: the same values by CKernels' fixed-width limb loop, `recursiveDot`) |
/// | `pairwise` | any | generic cascade: blocks of 8 summed recursively, block sums added pairwise |
/// | `compensated` | any | generic Neumaier summation of the rounded products, in the element format |
/// | `widened(.fp32)` | formats inside binary32 | products and sums in `Float`, left to right, one rounding of the result (products exact for p ≤ 12: the tensor-core model) |
/// | `widened(.fp64)` | formats inside binary64 | the same in `Double` |
/// | `blas` | `Float`, `Double` | OpenBLAS `?dot`/`?gemv`/`?gemm` in the element format (summation order: the library's) |
/// | `blas` | formats inside binary32 | exact widening to `Float`, OpenBLAS `sdot`/`sgemv`/`sgemm`, one rounding of each output: the tensor-core GEMM model |
/// | `blas` | `Dual<Float>`, `Dual<Double>` (gemm) | three BLAS products: value AB, tangent A'B + AB' |
/// | `blas` | wider types (`MPFloat`) | falls back to `recursive` (no BLAS exists) |
///
/// `widened` with a format narrower than the elements (fp32 for Double) rounds the
/// inputs: it is then mixed precision in the other direction, as asked.
public enum Accumulation: Hashable, Sendable, CustomStringConvertible {
    case recursive
    case pairwise
    case compensated
    case widened(WideFormat)
    case blas

    public enum WideFormat: String, Hashable, Sendable { case fp32, fp64 }

    public var description: String {
        switch self {
        case .recursive: return "recursive"
        case .pairwise: return "pairwise"
        case .compensated: return "compensated"
        case .widened(let w): return w.rawValue
        case .blas: return "blas"
        }
    }

    /// Parses `recursive`, `pairwise`, `compensated`, `fp32`, `fp64`, `blas`.
    public init?(name: String) {
        switch name.lowercased() {
        case "recursive", "native": self = .recursive
        case "pairwise": self = .pairwise
        case "compensated", "neumaier", "kahan": self = .compensated
        case "fp32", "widened-fp32": self = .widened(.fp32)
        case "fp64", "widened-fp64": self = .widened(.fp64)
        case "blas": self = .blas
        default: return nil
        }
    }
}
