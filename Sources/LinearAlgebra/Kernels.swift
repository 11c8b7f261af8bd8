import Scalars
import RealModule

/// Level-1 and level-2/3 kernels generic over the scalar, under an ``Accumulation``
/// policy. Vectors are contiguous buffers; matrices are ``Matrix`` (row-major).
public enum Kernels {
    // MARK: Dot products

    /// `Σ xᵢ yᵢ` under `accumulation`.
    @inlinable
    public static func dot<T: ComputeScalar>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>,
                                           accumulation: Accumulation = .recursive) -> T {
        precondition(x.count == y.count, "dot: length mismatch \(x.count) vs \(y.count)")
        if let s = Specialized.dot(x, y, accumulation) { return s }
        return dotLoop(x, y, accumulation: accumulation)
    }

    /// The loops of ``dot(_:_:accumulation:)``.
    @inlinable
    static func dotLoop<T: ComputeScalar>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>,
                                        accumulation: Accumulation) -> T {
        switch accumulation {
        case .recursive:
            if let s = T.recursiveDot(x, y) { return s }       // MPFloat: the limb loop, same bits
            var s = T.zero
            for i in 0..<x.count { s += x[i] * y[i] }
            return s
        case .pairwise:
            return pairwiseDot(x, y, 0, x.count)
        case .compensated:
            var s = T.zero, c = T.zero
            for i in 0..<x.count {
                let p = x[i] * y[i]
                let t = s + p
                if s.magnitude >= p.magnitude { c += (s - t) + p } else { c += (p - t) + s }
                s = t
            }
            return s + c
        case .widened(.fp32):
            var s: Float = 0
            for i in 0..<x.count { s += Float(x[i].doubleValue) * Float(y[i].doubleValue) }
            return T(roundingDouble: Double(s))
        case .widened(.fp64):
            var s = 0.0
            for i in 0..<x.count { s += x[i].doubleValue * y[i].doubleValue }
            return T(roundingDouble: s)
        case .blas:
            if let B = T.self as? any BLASScalar.Type { return blasDot(B, x, y) }
            if T.exactInBinary32 {
                let xf = x.map { Float($0.doubleValue) }, yf = y.map { Float($0.doubleValue) }
                return T(roundingDouble: Double(Float.blasDot(xf.count, xf, yf)))
            }
            return dotLoop(x, y, accumulation: .recursive)
        }
    }

    /// ``BLASScalar/blasDot(_:_:_:)`` of `T`'s buffers, `B` being `T`.
    @inlinable
    static func blasDot<T: ComputeScalar, B: BLASScalar>(_: B.Type, _ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>) -> T {
        let r = B.blasDot(x.count, UnsafeRawPointer(x.baseAddress)?.assumingMemoryBound(to: B.self),
                          UnsafeRawPointer(y.baseAddress)?.assumingMemoryBound(to: B.self))
        return unsafeBitCast(r, to: T.self)
    }

    @inlinable
    static func pairwiseDot<T: ComputeScalar>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>, _ lo: Int, _ hi: Int) -> T {
        if hi - lo <= 8 {
            var s = T.zero
            for i in lo..<hi { s += x[i] * y[i] }
            return s
        }
        let mid = lo + (hi - lo) / 2
        return pairwiseDot(x, y, lo, mid) + pairwiseDot(x, y, mid, hi)
    }

    @inlinable
    public static func dot<T: ComputeScalar>(_ x: [T], _ y: [T], accumulation: Accumulation = .recursive) -> T {
        x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in dot(xp, yp, accumulation: accumulation) } }
    }

    /// `‖x‖₂ = √(x·x)` under `accumulation`.
    @inlinable
    public static func nrm2<T: ComputeScalar>(_ x: [T], accumulation: Accumulation = .recursive) -> T {
        dot(x, x, accumulation: accumulation).squareRoot()
    }

    // MARK: Level 1 updates (elementwise: one rounding per element in T)

    /// `y ← a·x + y` (one fused rounding per element: `y.addingProduct(a, x)`).
    @inlinable
    public static func axpy<T: ComputeScalar>(_ a: T, _ x: [T], _ y: inout [T]) {
        precondition(x.count == y.count, "axpy: length mismatch")
        if Specialized.axpy(a, x, &y) { return }
        axpyLoop(a, x, &y)
    }

    /// The loop of ``axpy(_:_:_:)``.
    @inlinable
    static func axpyLoop<T: ComputeScalar>(_ a: T, _ x: [T], _ y: inout [T]) {
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in axpyLoop(a, xp, yp) } }
    }

    @inlinable
    static func axpyLoop<T: ComputeScalar>(_ a: T, _ xp: UnsafeBufferPointer<T>, _ yp: UnsafeMutableBufferPointer<T>) {
        for i in 0..<yp.count { yp[i] = yp[i].addingProduct(a, xp[i]) }
    }

    /// `x ← a·x`.
    @inlinable
    public static func scal<T: ComputeScalar>(_ a: T, _ x: inout [T]) {
        x.withUnsafeMutableBufferPointer { xp in for i in 0..<xp.count { xp[i] *= a } }
    }

    // MARK: Level 2 and 3

    /// `y = A x` with each output a dot product under `accumulation`.
    @inlinable
    public static func gemv<T: ComputeScalar>(_ a: Matrix<T>, _ x: [T], accumulation: Accumulation = .recursive) -> [T] {
        precondition(a.cols == x.count, "gemv: A is \(a.rows)×\(a.cols), x has \(x.count)")
        if case .blas = accumulation, let y = blasGemv(a, x) { return y }
        var y = [T](repeating: .zero, count: a.rows)
        a.storage.withUnsafeBufferPointer { ap in
            x.withUnsafeBufferPointer { xp in
                for i in 0..<a.rows {
                    let row = UnsafeBufferPointer(rebasing: ap[(i * a.cols)..<((i + 1) * a.cols)])
                    y[i] = dot(row, xp, accumulation: accumulation)
                }
            }
        }
        return y
    }

    @inlinable
    static func blasGemv<T: ComputeScalar>(_ a: Matrix<T>, _ x: [T]) -> [T]? {
        if let B = T.self as? any BLASScalar.Type { return blasGemv(B, a, x) }
        guard T.exactInBinary32 else { return nil }
        let af = a.storage.map { Float($0.doubleValue) }, xf = x.map { Float($0.doubleValue) }
        var y = [Float](repeating: 0, count: a.rows)
        Float.blasGemv(a.rows, a.cols, af, xf, &y)
        return y.map { T(roundingDouble: Double($0)) }
    }

    /// ``BLASScalar/blasGemv(_:_:_:_:_:)`` of `T`'s values, `B` being `T`.
    @inlinable
    static func blasGemv<T: ComputeScalar, B: BLASScalar>(_: B.Type, _ a: Matrix<T>, _ x: [T]) -> [T] {
        // Zeros first: BLAS returns without touching y when A has no columns.
        var y = [T](repeating: .zero, count: a.rows)
        a.storage.withUnsafeBufferPointer { ap in x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            B.blasGemv(a.rows, a.cols, UnsafeRawPointer(ap.baseAddress)?.assumingMemoryBound(to: B.self),
                       UnsafeRawPointer(xp.baseAddress)?.assumingMemoryBound(to: B.self),
                       UnsafeMutableRawPointer(yp.baseAddress)?.assumingMemoryBound(to: B.self))
        } } }
        return y
    }

    /// `C = A B` with each output a dot product under `accumulation`.
    @inlinable
    public static func gemm<T: ComputeScalar>(_ a: Matrix<T>, _ b: Matrix<T>, accumulation: Accumulation = .recursive) -> Matrix<T> {
        precondition(a.cols == b.rows, "gemm: A is \(a.rows)×\(a.cols), B is \(b.rows)×\(b.cols)")
        if case .blas = accumulation, let c = blasGemm(a, b) { return c }
        if a.rows > 0 && b.cols > 0 && a.cols > 0, let c = OrderedGemm.gemm(a, b, accumulation) { return c }
        if let c = Specialized.gemm(a, b, accumulation) { return c }
        return gemmLoop(a, b, accumulation: accumulation)
    }

    /// `C = op(A) op(B)`, op(X) = Xᵀ where asked, without copying the transposes where
    /// BLAS computes the product (Float and Double under `.blas`: the transposition is a
    /// flag of sgemm/dgemm; `Dual<Float>`/`Dual<Double>` pass it to their products, see
    /// `blasDualGemm`; all through `blasProduct`). Other types and policies transpose and call
    /// ``gemm(_:_:accumulation:)``, so their bits are those of the copies. Under `.blas`
    /// they are too for OpenBLAS's Prescott, Haswell and Zen kernel sets, not for
    /// SkylakeX and Cooperlake, whose small-matrix kernels sum in a layout-dependent
    /// order: deterministic for a given kernel set (recorded as `blas_core`), within the
    /// usual γ_k bound (tested), like every BLAS result.
    @inlinable
    public static func gemm<T: ComputeScalar>(_ a: Matrix<T>, transposed ta: Bool, _ b: Matrix<T>, transposed tb: Bool,
                                            accumulation: Accumulation = .recursive) -> Matrix<T> {
        if case .blas = accumulation, let c = b.storage.withUnsafeBufferPointer({ blasProduct(a, ta, $0, b.rows, b.cols, tb) }) {
            return c
        }
        return gemm(ta ? a.transposed() : a, tb ? b.transposed() : b, accumulation: accumulation)
    }

    /// ``gemm(_:transposed:_:transposed:accumulation:)`` with B given as the row-major
    /// `rows`×`cols` buffer `b` (a weight matrix inside a flat parameter vector): BLAS
    /// reads it in place; other types and policies copy it into a matrix first.
    @inlinable
    public static func gemm<T: ComputeScalar>(_ a: Matrix<T>, transposed ta: Bool, _ b: UnsafeBufferPointer<T>, rows: Int, cols: Int,
                                            transposed tb: Bool, accumulation: Accumulation = .recursive) -> Matrix<T> {
        precondition(b.count == rows * cols, "gemm: B has \(b.count) elements, not \(rows)×\(cols)")
        if case .blas = accumulation, let c = blasProduct(a, ta, b, rows, cols, tb) { return c }
        return gemm(a, transposed: ta, Matrix(rows: rows, cols: cols, storage: Array(b)), transposed: tb, accumulation: accumulation)
    }

    /// ``gemm(_:transposed:_:transposed:accumulation:)`` written into `c` (m·n elements,
    /// row-major; a gradient's slice of a flat vector): BLAS writes it in place.
    @inlinable
    public static func gemm<T: ComputeScalar>(_ a: Matrix<T>, transposed ta: Bool, _ b: Matrix<T>, transposed tb: Bool,
                                            into c: UnsafeMutableBufferPointer<T>, accumulation: Accumulation = .recursive) {
        if case .blas = accumulation, let B = T.self as? any BLASScalar.Type {
            a.storage.withUnsafeBufferPointer { ap in b.storage.withUnsafeBufferPointer { bp in
                blasInto(B, ap, a.rows, a.cols, ta, bp, b.rows, b.cols, tb, c)
            } }
            return
        }
        let r = gemm(a, transposed: ta, b, transposed: tb, accumulation: accumulation)
        precondition(c.count == r.storage.count, "gemm: the output holds \(c.count) elements, the product \(r.storage.count)")
        for i in r.storage.indices { c[i] = r.storage[i] }
    }

    /// op(A) op(B) through BLAS for the types it computes (Float, Double and their dual
    /// numbers), B a row-major br×bc buffer; nil for every other type. The one place the
    /// `.blas` entry points choose sgemm/dgemm or the dual products.
    @inlinable
    static func blasProduct<T: ComputeScalar>(_ a: Matrix<T>, _ ta: Bool, _ b: UnsafeBufferPointer<T>, _ br: Int, _ bc: Int,
                                            _ tb: Bool) -> Matrix<T>? {
        a.storage.withUnsafeBufferPointer { ap -> Matrix<T>? in
            let (m, n) = (ta ? a.cols : a.rows, tb ? br : bc)
            if let B = T.self as? any BLASScalar.Type {
                let c = [T](unsafeUninitializedCapacity: m * n) { cp, count in
                    blasInto(B, ap, a.rows, a.cols, ta, b, br, bc, tb, cp)
                    count = m * n
                }
                return Matrix(rows: m, cols: n, storage: c)
            }
            if let D = T.self as? any BLASDualScalar.Type { return blasDualProduct(D, ap, a.rows, a.cols, ta, b, br, bc, tb) }
            return nil
        }
    }

    /// ``blasDualGemm(_:_:_:_:_:_:_:_:)`` of `T`'s buffers, `D` being `T` (a `Dual<W>`, W a ``BLASScalar``).
    @inlinable
    static func blasDualProduct<T: ComputeScalar, D: BLASDualScalar>(_: D.Type, _ a: UnsafeBufferPointer<T>, _ ar: Int, _ ac: Int, _ ta: Bool,
                                                                  _ b: UnsafeBufferPointer<T>, _ br: Int, _ bc: Int, _ tb: Bool) -> Matrix<T> {
        typealias W = D.Component
        let c = blasDualGemm(UnsafeBufferPointer(start: UnsafeRawPointer(a.baseAddress)?.assumingMemoryBound(to: Dual<W>.self), count: a.count),
                             ar, ac, ta,
                             UnsafeBufferPointer(start: UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: Dual<W>.self), count: b.count),
                             br, bc, tb)
        return unsafeBitCast(c, to: Matrix<T>.self)
    }

    /// sgemm/dgemm (``BLASScalar/blasGemm(_:_:_:_:_:_:_:_:_:_:)``, `B` being `T`) of row-major
    /// buffers: C = op(A) op(B), A stored ar×ac, B br×bc, C (m·n elements) overwritten;
    /// zeros when the inner size is 0.
    @inlinable
    static func blasInto<T: ComputeScalar, B: BLASScalar>(_: B.Type, _ a: UnsafeBufferPointer<T>, _ ar: Int, _ ac: Int, _ ta: Bool,
                                                        _ b: UnsafeBufferPointer<T>, _ br: Int, _ bc: Int, _ tb: Bool,
                                                        _ c: UnsafeMutableBufferPointer<T>) {
        let (m, k) = ta ? (ac, ar) : (ar, ac)
        let (kb, n) = tb ? (bc, br) : (br, bc)
        precondition(k == kb && a.count == ar * ac && b.count == br * bc && c.count == m * n,
                     "gemm: op(A) is \(m)×\(k), op(B) \(kb)×\(n), C holds \(c.count)")
        guard m > 0 && n > 0 else { return }
        guard k > 0 else { for i in 0..<(m * n) { c[i] = .zero }; return }
        if let log = Kernels.gemmLog { log.record(GemmShape(m: m, k: k, n: n, transA: ta, transB: tb)) }
        B.blasGemm(ta, tb, m, n, k, UnsafeRawPointer(a.baseAddress!).assumingMemoryBound(to: B.self), max(ac, 1),
                   UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: B.self), max(bc, 1),
                   UnsafeMutableRawPointer(c.baseAddress!).assumingMemoryBound(to: B.self))
    }

    /// The loops of ``gemm(_:_:accumulation:)`` (outputs are ``dot(_:_:accumulation:)``s).
    @inlinable
    static func gemmLoop<T: ComputeScalar>(_ a: Matrix<T>, _ b: Matrix<T>, accumulation: Accumulation) -> Matrix<T> {
        let bt = b.transposed()
        var c = Matrix<T>(rows: a.rows, cols: b.cols)
        a.storage.withUnsafeBufferPointer { ap in
            bt.storage.withUnsafeBufferPointer { bp in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    for i in 0..<a.rows {
                        let row = UnsafeBufferPointer(rebasing: ap[(i * a.cols)..<((i + 1) * a.cols)])
                        for j in 0..<b.cols {
                            let col = UnsafeBufferPointer(rebasing: bp[(j * b.rows)..<((j + 1) * b.rows)])
                            cp[i * b.cols + j] = dotLoop(row, col, accumulation: accumulation)
                        }
                    }
                }
            }
        }
        return c
    }

    /// Dual numbers over Float/Double under `.blas`: (A + εA')(B + εB') = AB + ε(A'B + AB'),
    /// three BLAS products (the tangent is fl(A'B + AB'), the two products rounded
    /// first). The values and tangents are split in one pass per operand, and op(X) = Xᵀ
    /// is a flag of the products, as in ``gemm(_:transposed:_:transposed:accumulation:)``.
    /// A tangent that is all zeros (the data entering a network) with finite values on
    /// the other side makes its product exactly +0 (every term ±0, summed from +0), and
    /// fl(+0 + c) = c + 0: that product is skipped, as forward-mode frameworks skip
    /// symbolic zeros; the same bits as computing it (tested for every kernel set).
    /// Operands are row-major buffers (A stored ar×ac, B br×bc): a weight matrix is split
    /// straight from the parameter vector.
    @inlinable
    static func blasDualGemm<W: BLASScalar>(_ a: UnsafeBufferPointer<Dual<W>>, _ ar: Int, _ ac: Int, _ ta: Bool,
                                            _ b: UnsafeBufferPointer<Dual<W>>, _ br: Int, _ bc: Int, _ tb: Bool) -> Matrix<Dual<W>> {
        let (m, n) = (ta ? ac : ar, tb ? br : bc)
        precondition(a.count == ar * ac && b.count == br * bc && (ta ? ar : ac) == (tb ? bc : br),
                     "gemm: A is \(ar)×\(ac), B is \(br)×\(bc)")
        guard m > 0 && n > 0 else { return Matrix(rows: m, cols: n, storage: []) }
        if let log = Kernels.gemmLog { log.recordDual(GemmShape(m: m, k: ta ? ar : ac, n: n, transA: ta, transB: tb)) }
        let sa = split(a), sb = split(b)
        func product(_ x: [W], _ y: [W]) -> [W] {
            [W](unsafeUninitializedCapacity: m * n) { c, count in
                x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in blasInto(W.self, xp, ar, ac, ta, yp, br, bc, tb, c) } }
                count = m * n
            }
        }
        let cv = product(sa.values, sb.values)
        let aZero = sa.tangentsZero && sb.valuesFinite, bZero = sb.tangentsZero && sa.valuesFinite
        let c1: [W]? = aZero ? nil : product(sa.tangents, sb.values)
        let c2: [W]? = bZero ? nil : product(sa.values, sb.tangents)
        let out = [Dual<W>](unsafeUninitializedCapacity: m * n) { o, count in
            let d = UnsafeMutableRawPointer(o.baseAddress!)
            cv.withUnsafeBufferPointer { v in
                withOptionalPointer(c1) { t1 in withOptionalPointer(c2) { t2 in
                    W.mergeDual(m * n, v.baseAddress!, t1?.assumingMemoryBound(to: W.self), t2?.assumingMemoryBound(to: W.self),
                                d.assumingMemoryBound(to: W.self))
                } }
            }
            count = m * n
        }
        return Matrix(rows: m, cols: n, storage: out)
    }

    /// The values and the tangents of `x` in one pass, with whether every tangent is zero
    /// and every value finite (``BLASScalar/splitDual(_:_:_:_:)``).
    @inlinable
    static func split<W: BLASScalar>(_ x: UnsafeBufferPointer<Dual<W>>)
        -> (values: [W], tangents: [W], tangentsZero: Bool, valuesFinite: Bool) {
        var tangents = [W](), flags: Int32 = 3
        let values = [W](unsafeUninitializedCapacity: x.count) { v, count in
            tangents = [W](unsafeUninitializedCapacity: x.count) { t, tCount in
                if let base = x.baseAddress {
                    let d = UnsafeRawPointer(base), vr = UnsafeMutableRawPointer(v.baseAddress!), tr = UnsafeMutableRawPointer(t.baseAddress!)
                    flags = W.splitDual(x.count, d.assumingMemoryBound(to: W.self), vr.assumingMemoryBound(to: W.self),
                                        tr.assumingMemoryBound(to: W.self))
                }
                tCount = x.count
            }
            count = x.count
        }
        return (values, tangents, flags & 1 != 0, flags & 2 != 0)
    }

    /// `body` with the array's base address, or nil for nil.
    @inlinable
    static func withOptionalPointer<W, R>(_ a: [W]?, _ body: (UnsafeRawPointer?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress)) }
    }

    @inlinable
    static func blasGemm<T: ComputeScalar>(_ a: Matrix<T>, _ b: Matrix<T>) -> Matrix<T>? {
        if let c = b.storage.withUnsafeBufferPointer({ blasProduct(a, false, $0, b.rows, b.cols, false) }) { return c }
        guard T.exactInBinary32, a.rows > 0, b.cols > 0 else { return nil }
        let af = a.storage.map { Float($0.doubleValue) }, bf = b.storage.map { Float($0.doubleValue) }
        var c = [Float](repeating: 0, count: a.rows * b.cols)
        if a.cols > 0 { Float.blasGemm(false, false, a.rows, b.cols, a.cols, af, max(a.cols, 1), bf, max(b.cols, 1), &c) }
        return Matrix(rows: a.rows, cols: b.cols, storage: c.map { T(roundingDouble: Double($0)) })
    }
}

/// The kernels' loops run with the concrete scalar type (``ScalarRegistry/specialized(_:_:)``):
/// the buffers are reinterpreted as the type they already are, so the arithmetic is
/// the same code with the same bits; other types run the generic loops.
@usableFromInline
enum Specialized {
    @inlinable
    static func dot<T: ComputeScalar>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>, _ acc: Accumulation) -> T? {
        var r = T.zero
        let done = withUnsafeMutablePointer(to: &r) {
            ScalarRegistry.specialized(T.self, Dot(x: UnsafeRawPointer(x.baseAddress), y: UnsafeRawPointer(y.baseAddress), count: x.count,
                                                   acc: acc, out: UnsafeMutableRawPointer($0))) != nil
        }
        return done ? r : nil
    }

    /// `y ← a·x + y` specialized; false when `T` is not one of the types.
    @inlinable
    static func axpy<T: ComputeScalar>(_ a: T, _ x: [T], _ y: inout [T]) -> Bool {
        // Float and Double: their own loops (`fusedAxpy`, the same fused rounding per element).
        return x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                if T.fusedAxpy(a, xp, yp) { return true }
                var a = a
                return withUnsafePointer(to: &a) {
                    ScalarRegistry.specialized(T.self, Axpy(a: UnsafeRawPointer($0), x: UnsafeRawPointer(xp.baseAddress),
                                                            y: UnsafeMutableRawPointer(yp.baseAddress), count: yp.count)) != nil
                }
            }
        }
    }

    @inlinable
    static func gemm<T: ComputeScalar>(_ a: Matrix<T>, _ b: Matrix<T>, _ acc: Accumulation) -> Matrix<T>? {
        var (a, b, c) = (a, b, Matrix<T>(rows: 0, cols: 0))
        let done = withUnsafePointer(to: &a) { ap in withUnsafePointer(to: &b) { bp in withUnsafeMutablePointer(to: &c) { cp in
            ScalarRegistry.specialized(T.self, Gemm(a: UnsafeRawPointer(ap), b: UnsafeRawPointer(bp), acc: acc, out: UnsafeMutableRawPointer(cp))) != nil
        } } }
        return done ? c : nil
    }

    // The bodies are not generic (their operands are untyped pointers to values of
    // the type `run` is called with): a generic body would leave `run<U>` partially
    // specialized, which the compiler does not do, and the loops would run generic.

    @usableFromInline
    struct Dot: SpecializedBody {
        @usableFromInline let x: UnsafeRawPointer?, y: UnsafeRawPointer?, count: Int, acc: Accumulation, out: UnsafeMutableRawPointer
        @inlinable init(x: UnsafeRawPointer?, y: UnsafeRawPointer?, count: Int, acc: Accumulation, out: UnsafeMutableRawPointer) {
            self.x = x; self.y = y; self.count = count; self.acc = acc; self.out = out
        }
        @inlinable func run<U: ComputeScalar>(_: U.Type) {
            out.assumingMemoryBound(to: U.self).pointee = Kernels.dotLoop(
                UnsafeBufferPointer(start: x?.assumingMemoryBound(to: U.self), count: count),
                UnsafeBufferPointer(start: y?.assumingMemoryBound(to: U.self), count: count), accumulation: acc)
        }
    }

    @usableFromInline
    struct Axpy: SpecializedBody {
        @usableFromInline let a: UnsafeRawPointer, x: UnsafeRawPointer?, y: UnsafeMutableRawPointer?, count: Int
        @inlinable init(a: UnsafeRawPointer, x: UnsafeRawPointer?, y: UnsafeMutableRawPointer?, count: Int) {
            self.a = a; self.x = x; self.y = y; self.count = count
        }
        @inlinable func run<U: ComputeScalar>(_: U.Type) {
            Kernels.axpyLoop(a.assumingMemoryBound(to: U.self).pointee, UnsafeBufferPointer(start: x?.assumingMemoryBound(to: U.self), count: count),
                             UnsafeMutableBufferPointer(start: y?.assumingMemoryBound(to: U.self), count: count))
        }
    }

    @usableFromInline
    struct Gemm: SpecializedBody {
        @usableFromInline let a: UnsafeRawPointer, b: UnsafeRawPointer, acc: Accumulation, out: UnsafeMutableRawPointer
        @inlinable init(a: UnsafeRawPointer, b: UnsafeRawPointer, acc: Accumulation, out: UnsafeMutableRawPointer) {
            self.a = a; self.b = b; self.acc = acc; self.out = out
        }
        @inlinable func run<U: ComputeScalar>(_: U.Type) {
            out.assumingMemoryBound(to: Matrix<U>.self).pointee = Kernels.gemmLoop(
                a.assumingMemoryBound(to: Matrix<U>.self).pointee, b.assumingMemoryBound(to: Matrix<U>.self).pointee, accumulation: acc)
        }
    }
}
