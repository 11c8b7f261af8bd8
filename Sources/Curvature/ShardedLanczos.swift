import Collectives
import Scalars
import Krylov

/// Lanczos as the FSDP pipeline runs it: SPMD, each rank holding only its shard of
/// every Lanczos vector. Every value is rounded into the `krylov` stage format op by op
/// (w in fp64 carriers, the Lanczos vectors q stored as below); every dot product is a local sum in the `accumulate` format (the
/// policy's ``PrecisionPolicy/krylovAccumulationFormat``; default `krylov`) plus an
/// all-reduce in that format and `order`, rounded once into `krylov`. `apply` maps this rank's shard of q to its shard of Aq
/// (typically ``ShardedHVP/rankEstimate(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``,
/// which uses collectives itself). Full reorthogonalization (twice classical
/// Gram–Schmidt) sends all projections of a pass in one all-reduce.
///
/// With `measureOrthogonality`, every rank keeps its shards of the basis and after
/// each step the new vector's projections on all earlier ones are all-reduced in
/// fp64 (sequential order): `orth_loss` and `orth_loss_fro` of NUMERICS.md §6, as
/// ``Lanczos`` measures them unsharded, at the cost of one extra all-reduce per step.
///
/// The Lanczos vectors q, and with them the stored basis (for full reorthogonalization
/// and for the measurement, one copy for both, shared with q and q_prev), are kept in
/// binary32 when every value of the `krylov` format is a binary32 value (fp32, bf16,
/// fp16, tf32, fp8, …): the same values in half the memory of fp64 carriers, 0.54 GB
/// instead of 1.08 GB per vector at 1.3·10⁸ parameters. `binary32Basis` overrides the
/// choice (nil chooses; tests compare the two storages).
public enum ShardedLanczos {
    /// Bytes per stored basis value for Krylov format `k`: 4 when every value of `k` is a
    /// binary32 value, else 8 (fp64 carriers).
    public static func basisBytes(krylov k: FormatArithmetic) -> Int { k.format?.isEmulatable == true ? 4 : 8 }

    public struct Result: Sendable, Equatable {
        public var alpha: [Double], beta: [Double]
        /// Per step (nil when not measured).
        public var orthLoss: [Double?], orthLossFro: [Double?]
        /// Why the run stopped before `steps` (nil: it did not). A non-finite step is
        /// dropped, as in ``Lanczos``.
        public var breakdown: LanczosBreakdown?
    }

    public static func run(comm: any Communicator, start: [Double], steps: Int,
                           reorthogonalization: Reorthogonalization = .none, krylov k: FormatArithmetic = .fp64,
                           accumulate: FormatArithmetic? = nil,
                           order: ReductionOrder = .sequential, apply: ([Double]) -> [Double]) -> (alpha: [Double], beta: [Double]) {
        let r = run(comm: comm, start: start, steps: steps, reorthogonalization: reorthogonalization, krylov: k, accumulate: accumulate,
                    order: order, measureOrthogonality: false, apply: apply)
        return (r.alpha, r.beta)
    }

    public static func run(comm: any Communicator, start: [Double], steps: Int,
                           reorthogonalization: Reorthogonalization = .none, krylov k: FormatArithmetic = .fp64,
                           accumulate: FormatArithmetic? = nil,
                           order: ReductionOrder = .sequential, measureOrthogonality measure: Bool,
                           binary32Basis: Bool? = nil, apply: ([Double]) -> [Double]) -> Result {
        precondition(reorthogonalization == .none || reorthogonalization == .full, "sharded Lanczos supports none and full")
        let narrow = binary32Basis ?? (basisBytes(krylov: k) == 4)
        precondition(!narrow || basisBytes(krylov: k) == 4, "a binary32 basis needs a Krylov format whose values are binary32 values")
        return narrow ? run(Float.self, comm: comm, start: start, steps: steps, full: reorthogonalization == .full, k: k,
                            acc: accumulate ?? k, order: order, measure: measure, apply: apply)
                      : run(Double.self, comm: comm, start: start, steps: steps, full: reorthogonalization == .full, k: k,
                            acc: accumulate ?? k, order: order, measure: measure, apply: apply)
    }

    /// Vectors per pass of the grouped dot products and updates.
    static let group = 8

    /// Σᵢ aᵢ·yᵢ in binary64 (each product rounded, then added, left to right) for each of one
    /// to four vectors a, the four chains advancing together.
    @inline(__always)
    static func plainDots<S: BinaryFloatingPoint>(_ xs: [UnsafeBufferPointer<S>], _ y: UnsafeBufferPointer<S>) -> [Double] {
        let a0 = xs[0], a1 = xs[min(1, xs.count - 1)], a2 = xs[min(2, xs.count - 1)], a3 = xs[min(3, xs.count - 1)]
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        for i in 0..<y.count {
            let yi = Double(y[i])
            s0 += Double(a0[i]) * yi; s1 += Double(a1[i]) * yi; s2 += Double(a2[i]) * yi; s3 += Double(a3[i]) * yi
        }
        return Array([s0, s1, s2, s3].prefix(xs.count))
    }

    /// `body` with the buffer pointers of `arrays` (valid inside it: nested closures).
    static func withBuffers<S, R>(_ arrays: ArraySlice<[S]>, _ done: [UnsafeBufferPointer<S>] = [],
                                  _ body: ([UnsafeBufferPointer<S>]) -> R) -> R {
        guard let first = arrays.first else { return body(done) }
        return first.withUnsafeBufferPointer { withBuffers(arrays.dropFirst(), done + [$0], body) }
    }

    /// The recurrence with the Lanczos vectors q stored as `S` (binary32 when every value
    /// of the Krylov format is one, else binary64: the same values either way). q and
    /// q_prev are the basis's own arrays (copy-on-write: appending shares the storage), so
    /// at 1.3·10⁸ parameters the vectors beyond the basis are w (fp64 carriers, the FD-HVP's
    /// result updated in place) and, while `apply` runs, q widened to fp64.
    static func run<S: BinaryFloatingPoint & ComputeScalar>(_: S.Type, comm: any Communicator, start: [Double], steps: Int, full: Bool,
                                            k: FormatArithmetic, acc: FormatArithmetic, order: ReductionOrder, measure: Bool,
                                            apply: ([Double]) -> [Double]) -> Result {
        // The local dot products of every x with b, several x per pass over b (in groups of
        // `group`: the same sums as one at a time).
        func localDots(_ xs: [[S]], _ b: [Double]) -> [Double] {
            b.withUnsafeBufferPointer { b in
                stride(from: 0, to: xs.count, by: group).flatMap { c in withBuffers(xs[c..<min(c + group, xs.count)]) { acc.fmaSums($0, b) } }
            }
        }
        // w ← w − c_m·x_m for m = 0, 1, … in order, each element rounded once into the Krylov
        // format per update (several x per pass over w: the same bits as one at a time).
        func update(_ w: inout [Double], _ cs: [Double], _ xs: [[S]]) {
            w.withUnsafeMutableBufferPointer { w in
                for c in stride(from: 0, to: xs.count, by: group) {
                    let r = c..<min(c + group, xs.count)
                    withBuffers(xs[r]) { k.fmaEach(w, cs[r].map { -$0 }, $0) }
                }
            }
        }
        func dot(_ a: [S], _ b: [Double]) -> Double { k.round(comm.allReduce(localDots([a], b)[0], format: acc, order: order)) }
        func norm(_ w: [Double]) -> Double {
            k.round(k.round(comm.allReduce(w.withUnsafeBufferPointer { acc.fmaSum($0, $0) }, format: acc, order: order)).squareRoot())
        }
        // x/ν element by element in the Krylov format (exact in S).
        func scaled(_ x: [Double], _ nu: Double) -> [S] {
            [S](unsafeUninitializedCapacity: x.count) { out, count in
                for i in x.indices { out[i] = S(k.div(x[i], nu)) }
                count = x.count
            }
        }
        let u = (k.format?.unitRoundoff ?? 0x1p-53)
        var q = scaled(start, norm(start))
        var qPrev = [S](repeating: 0, count: q.count)
        var betaPrev = 0.0
        var basis: [[S]] = []
        var alphas: [Double] = [], betas: [Double] = []
        var normEstimate = 0.0
        var breakdown: LanczosBreakdown? = nil
        // Orthogonality in fp64: local sums plus an all-reduce in fp64, of the stored
        // vectors against x and then of x with itself, four sums per pass over x (each its
        // own chain: the same sums as one at a time).
        func dots64(_ x: [S]) -> [Double] {
            let all = basis + [x]
            let local = x.withUnsafeBufferPointer { x in
                stride(from: 0, to: all.count, by: 4).flatMap { c in withBuffers(all[c..<min(c + 4, all.count)]) { plainDots($0, x) } }
            }
            return comm.allReduce(local, format: .fp64, order: .sequential)
        }
        var maxOff = 0.0, fro2 = 0.0
        if measure { let s = dots64(q)[0]; fro2 = (1 - s) * (1 - s) }      // the basis is still empty: q·q
        if full || measure { basis.append(q) }
        var orthLoss: [Double?] = [], orthLossFro: [Double?] = []
        for j in 0..<steps {
            var w = apply(q as? [Double] ?? q.map { Double($0) })
            let alpha = dot(q, w)
            // Per element w − αq, then − βq_prev: two passes, the same two roundings. Under
            // stochastic rounding the draws are taken element by element as before (the
            // same stream order, so the same bits as earlier runs).
            if k.mode == .stochastic {
                for i in w.indices {
                    w[i] = k.fma(w[i], -alpha, Double(q[i]))
                    if j > 0 { w[i] = k.fma(w[i], -betaPrev, Double(qPrev[i])) }
                }
            } else {
                if j > 0 { update(&w, [alpha, betaPrev], [q, qPrev]) } else { update(&w, [alpha], [q]) }
            }
            if full {
                for _ in 0..<2 {
                    let h = comm.allReduce(localDots(basis, w), format: acc, order: order).map { k.round($0) }
                    update(&w, h, basis)
                }
            }
            let beta = norm(w)
            if !alpha.isFinite || !beta.isFinite { breakdown = .nonFinite; break }
            alphas.append(alpha); betas.append(beta)
            orthLoss.append(measure ? maxOff : nil); orthLossFro.append(measure ? fro2.squareRoot() : nil)
            normEstimate = max(normEstimate, abs(alpha) + beta + betaPrev)
            if beta <= 4 * u * normEstimate { breakdown = .invariantSubspace; break }
            if j + 1 == steps { break }
            qPrev = q
            q = scaled(w, beta)
            w = []
            betaPrev = beta
            if measure {
                let d = dots64(q)
                for x in d.dropLast() { maxOff = max(maxOff, abs(x)); fro2 += 2 * x * x }
                fro2 += (1 - d.last!) * (1 - d.last!)
            }
            if full || measure { basis.append(q) }
        }
        return Result(alpha: alphas, beta: betas, orthLoss: orthLoss, orthLossFro: orthLossFro, breakdown: breakdown)
    }
}
