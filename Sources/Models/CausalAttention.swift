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
///
/// The loops are arranged so that the innermost one is element-wise over contiguous
/// memory and vectorizes, without reordering any sum: the dot products q·k[j] (and dO·v[j])
/// of a row run together over j against the head's keys (values) transposed, each still
/// summed over e = 0, 1, … in order; o[t] and the gradient rows are accumulated over j in
/// order, each of their d_h components on its own. Every value is the one the plain
/// loops (a dot product per (t, j), then per e) compute, bit for bit in every format
/// (`CausalAttentionTests`).
enum CausalAttention {
    /// Writes rows r0..<r0+L of `o` and returns P per head (L × L, lower triangle).
    @inline(__always)
    static func forward<T: ComputeScalar>(q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, rows r0: Int, length L: Int, heads H: Int,
                                        kvHeads K: Int, headWidth dh: Int, scale: T, into o: inout Matrix<T>) -> [Matrix<T>] {
        let group = H / K, qc = q.cols, kc = k.cols, vc = v.cols, oc = o.cols
        precondition(r0 >= 0 && r0 + L <= min(q.rows, k.rows, v.rows, o.rows) && H * dh <= min(qc, oc) && K * dh <= min(kc, vc),
                     "CausalAttention: operands too small")
        var ps: [Matrix<T>] = []
        ps.reserveCapacity(H)
        var kt = [T](repeating: .zero, count: dh * L)          // the head's keys transposed: kt[e·L + j] = k[r0 + j, kv·dh + e]
        var sc = [T](repeating: .zero, count: L), acc = [T](repeating: .zero, count: dh)
        for hd in 0..<H {
            let kv = hd / group
            var p = Matrix<T>(rows: L, cols: L)
            q.storage.withUnsafeBufferPointer { qs in k.storage.withUnsafeBufferPointer { ks in v.storage.withUnsafeBufferPointer { vs in
            kt.withUnsafeMutableBufferPointer { kt in sc.withUnsafeMutableBufferPointer { sc in acc.withUnsafeMutableBufferPointer { acc in
            p.storage.withUnsafeMutableBufferPointer { pp in o.storage.withUnsafeMutableBufferPointer { os in
                if hd % group == 0 {
                    for j in 0..<L { for e in 0..<dh { kt[e * L + j] = ks[(r0 + j) * kc + kv * dh + e] } }
                }
                for t in 0..<L {
                    let qRow = (r0 + t) * qc + hd * dh
                    for j in 0...t { sc[j] = .zero }
                    for e in 0..<dh {
                        let a = qs[qRow + e], base = e * L
                        for j in 0...t { sc[j] += a * kt[base + j] }
                    }
                    var mx = -T.infinity
                    for j in 0...t {
                        sc[j] = sc[j] * scale
                        if sc[j] > mx { mx = sc[j] }
                    }
                    var z = T.zero
                    for j in 0...t { sc[j] = T.exp(sc[j] - mx); z += sc[j] }
                    let pRow = t * L
                    for j in 0...t { pp[pRow + j] = sc[j] / z }
                    for e in 0..<dh { acc[e] = .zero }
                    for j in 0...t {
                        let pj = pp[pRow + j], vRow = (r0 + j) * vc + kv * dh
                        for e in 0..<dh { acc[e] += pj * vs[vRow + e] }
                    }
                    let oRow = (r0 + t) * oc + hd * dh
                    for e in 0..<dh { os[oRow + e] = acc[e] }
                }
            }}}}}}}}
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
        let qc = q.cols, kc = k.cols, vc = v.cols, oc = dO.cols
        precondition(r0 >= 0 && r0 + L <= min(q.rows, k.rows, v.rows, dO.rows, dq.rows, dk.rows, dv.rows) && H * dh <= min(qc, oc)
                     && K * dh <= min(kc, vc) && dq.cols == qc && dk.cols == kc && dv.cols == vc && p.count >= H,
                     "CausalAttention: operands too small")
        var vt = [T](repeating: .zero, count: dh * L)          // the head's values transposed: vt[e·L + j] = v[r0 + j, kv·dh + e]
        var dp = [T](repeating: .zero, count: L)
        for hd in 0..<H {
            let kv = hd / group, ph = p[p0 + hd]
            precondition(ph.rows >= L && ph.cols == L, "CausalAttention: P has the wrong shape")
            dO.storage.withUnsafeBufferPointer { dOs in q.storage.withUnsafeBufferPointer { qs in k.storage.withUnsafeBufferPointer { ks in
            v.storage.withUnsafeBufferPointer { vs in ph.storage.withUnsafeBufferPointer { pp in
            vt.withUnsafeMutableBufferPointer { vt in dp.withUnsafeMutableBufferPointer { dp in
            dq.storage.withUnsafeMutableBufferPointer { dqs in dk.storage.withUnsafeMutableBufferPointer { dks in
            dv.storage.withUnsafeMutableBufferPointer { dvs in
                if hd % group == 0 {
                    for j in 0..<L { for e in 0..<dh { vt[e * L + j] = vs[(r0 + j) * vc + kv * dh + e] } }
                }
                for t in 0..<L {
                    let oRow = (r0 + t) * oc + hd * dh, qRow = (r0 + t) * qc + hd * dh, pRow = t * L
                    for j in 0...t { dp[j] = .zero }
                    for e in 0..<dh {
                        let a = dOs[oRow + e], base = e * L
                        for j in 0...t { dp[j] += a * vt[base + j] }
                    }
                    var dot = T.zero
                    for j in 0...t { dot += pp[pRow + j] * dp[j] }
                    for j in 0...t {
                        let pj = pp[pRow + j]
                        let ds = pj * (dp[j] - dot) * scale
                        let kRow = (r0 + j) * kc + kv * dh, vRow = (r0 + j) * vc + kv * dh
                        for e in 0..<dh { dqs[qRow + e] += ds * ks[kRow + e] }
                        for e in 0..<dh { dks[kRow + e] += ds * qs[qRow + e] }
                        for e in 0..<dh { dvs[vRow + e] += pj * dOs[oRow + e] }
                    }
                }
            }}}}}}}}}}
        }
    }
}
