import Testing
import RealModule
@testable import Models
import Scalars
import LinearAlgebra

/// The attention kernel against the plain loops it was written from (a dot product per
/// (t, j), then per component e, subscripted), bit for bit: its loops are arranged to
/// vectorize without reordering a sum, so every value must be the same in every format.
@Suite struct CausalAttentionTests {
    static func plainForward<T: ComputeScalar>(q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, rows r0: Int, length L: Int, heads H: Int,
                                               kvHeads K: Int, headWidth dh: Int, scale: T, into o: inout Matrix<T>) -> [Matrix<T>] {
        var ps: [Matrix<T>] = []
        for hd in 0..<H {
            let kv = hd / (H / K)
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

    static func plainBackward<T: ComputeScalar>(dO: Matrix<T>, q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, p: [Matrix<T>], rows r0: Int,
                                                length L: Int, heads H: Int, kvHeads K: Int, headWidth dh: Int, scale: T,
                                                dq: inout Matrix<T>, dk: inout Matrix<T>, dv: inout Matrix<T>) {
        for hd in 0..<H {
            let kv = hd / (H / K), ph = p[hd]
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

    /// Two stacked sequences (the second at r0 = L), grouped-query heads, nonzero starting
    /// gradients; values of both signs with several binades so that rounding happens.
    func check<T: ComputeScalar>(_: T.Type, heads H: Int, kvHeads K: Int, make: (Double, Double) -> T, same: @escaping (T, T) -> Bool) {
        let L = 7, dh = 5, rows = 2 * L
        var g = SplitMix64(seed: 11)
        func matrix(_ cols: Int) -> Matrix<T> {
            Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in make(3 * (2 * g.nextUniform() - 1), 2 * g.nextUniform() - 1) })
        }
        let q = matrix(H * dh), k = matrix(K * dh), v = matrix(K * dh), dO = matrix(H * dh)
        let scale = make(1 / 2.2360679774997896, 0)
        for r0 in [0, L] {
            var o1 = matrix(H * dh), o2 = o1
            let p1 = CausalAttention.forward(q: q, k: k, v: v, rows: r0, length: L, heads: H, kvHeads: K, headWidth: dh, scale: scale, into: &o1)
            let p2 = Self.plainForward(q: q, k: k, v: v, rows: r0, length: L, heads: H, kvHeads: K, headWidth: dh, scale: scale, into: &o2)
            #expect(zip(o1.storage, o2.storage).allSatisfy(same), "\(T.self) forward o, r0 = \(r0)")
            #expect(zip(p1, p2).allSatisfy { zip($0.storage, $1.storage).allSatisfy(same) }, "\(T.self) forward P")
            var dq1 = matrix(H * dh), dk1 = matrix(K * dh), dv1 = matrix(K * dh)
            var dq2 = dq1, dk2 = dk1, dv2 = dv1
            let start = (dq1.storage, dk1.storage, dv1.storage)
            CausalAttention.backward(dO: dO, q: q, k: k, v: v, p: p1[...], rows: r0, length: L, heads: H, kvHeads: K, headWidth: dh, scale: scale,
                                     dq: &dq1, dk: &dk1, dv: &dv1)
            Self.plainBackward(dO: dO, q: q, k: k, v: v, p: p2, rows: r0, length: L, heads: H, kvHeads: K, headWidth: dh, scale: scale,
                               dq: &dq2, dk: &dk2, dv: &dv2)
            #expect(zip(dq1.storage, dq2.storage).allSatisfy(same), "\(T.self) dq, r0 = \(r0)")
            #expect(zip(dk1.storage, dk2.storage).allSatisfy(same), "\(T.self) dk, r0 = \(r0)")
            #expect(zip(dv1.storage, dv2.storage).allSatisfy(same), "\(T.self) dv, r0 = \(r0)")
            // Not vacuous: every gradient moved.
            #expect(dq1.storage != start.0 && dk1.storage != start.1 && dv1.storage != start.2)
        }
    }

    @Test(arguments: [(4, 4), (4, 2), (6, 1)])
    func sameBitsAsThePlainLoops(heads: Int, kvHeads: Int) {
        check(Float.self, heads: heads, kvHeads: kvHeads, make: { x, _ in Float(x) }, same: { $0.bitPattern == $1.bitPattern })
        check(Double.self, heads: heads, kvHeads: kvHeads, make: { x, _ in x }, same: { $0.bitPattern == $1.bitPattern })
        check(BFloat16.self, heads: heads, kvHeads: kvHeads, make: { x, _ in BFloat16(roundingDouble: x) }, same: { $0.bitPattern == $1.bitPattern })
        check(Dual<Double>.self, heads: heads, kvHeads: kvHeads, make: { Dual($0, $1) },
              same: { $0.value.bitPattern == $1.value.bitPattern && $0.tangent.bitPattern == $1.tangent.bitPattern })
    }
}
