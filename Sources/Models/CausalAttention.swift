import Scalars
import LinearAlgebra
import RealModule

/// Causal softmax attention of one sequence, forward and reverse: the one kernel of the
/// transformer LM and the Llama model.
///
/// Rows `r0 ..< r0 + L` of Q, K, V hold the sequence's positions (the Llama model stacks
/// its sequences; the transformer LM passes one sequence at r0 = 0). Head h (width d_h)
/// reads key–value head `h / (H / K)` (grouped-query attention; K = H is ordinary
/// multi-head attention): `P_h[t, j] = softmax_{j ≤ t}(scale · q_h[t]·k[j])`,
/// `o_h[t] = Σ_{j ≤ t} P_h[t, j] v[j]`, the softmax shifted by its row maximum. Every sum
/// runs left to right in the compute type.
enum CausalAttention {
    /// Writes rows r0..<r0+L of `o` and returns P per head (L × L, lower triangle).
    @inline(__always)
    static func forward<T: ComputeScalar>(q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, rows r0: Int, length L: Int, heads H: Int,
                                        kvHeads K: Int, headWidth dh: Int, scale: T, into o: inout Matrix<T>) -> [Matrix<T>] {
        let group = H / K
        var ps: [Matrix<T>] = []
        ps.reserveCapacity(H)
        for hd in 0..<H {
            let kv = hd / group
            var p = Matrix<T>(rows: L, cols: L)
            for t in 0..<L {
                var mx = -T.infinity
                var sc = [T](repeating: .zero, count: t + 1)
                for j in 0...t {
                    var x = T.zero
                    for e in 0..<dh { x += q[r0 + t, hd * dh + e] * k[r0 + j, kv * dh + e] }
                    sc[j] = x * scale
                    if sc[j] > mx { mx = sc[j] }
                }
                var z = T.zero
                for j in 0...t { sc[j] = T.exp(sc[j] - mx); z += sc[j] }
                for j in 0...t { p[t, j] = sc[j] / z }
                for e in 0..<dh {
                    var x = T.zero
                    for j in 0...t { x += p[t, j] * v[r0 + j, kv * dh + e] }
                    o[r0 + t, hd * dh + e] = x
                }
            }
            ps.append(p)
        }
        return ps
    }

    /// Adds the gradients of Q, K, V (rows r0..<r0+L) for the output gradient dO, given the
    /// forward's P (`p[hd]` for head hd): dS = P ⊙ (dP − Σ_j P dP), dP = dO·Vᵀ.
    @inline(__always)
    static func backward<T: ComputeScalar>(dO: Matrix<T>, q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, p: ArraySlice<Matrix<T>>, rows r0: Int,
                                         length L: Int, heads H: Int, kvHeads K: Int, headWidth dh: Int, scale: T,
                                         dq: inout Matrix<T>, dk: inout Matrix<T>, dv: inout Matrix<T>) {
        let group = H / K, p0 = p.startIndex
        for hd in 0..<H {
            let kv = hd / group, ph = p[p0 + hd]
            for t in 0..<L {
                var dp = [T](repeating: .zero, count: t + 1)
                var dot = T.zero
                for j in 0...t {
                    var x = T.zero
                    for e in 0..<dh { x += dO[r0 + t, hd * dh + e] * v[r0 + j, kv * dh + e] }
                    dp[j] = x
                    dot += ph[t, j] * x
                }
                for j in 0...t {
                    let ds = ph[t, j] * (dp[j] - dot) * scale
                    for e in 0..<dh {
                        dq[r0 + t, hd * dh + e] += ds * k[r0 + j, kv * dh + e]
                        dk[r0 + j, kv * dh + e] += ds * q[r0 + t, hd * dh + e]
                        dv[r0 + j, kv * dh + e] += ph[t, j] * dO[r0 + t, hd * dh + e]
                    }
                }
            }
        }
    }
}
