/// Loops of ``FormatArithmetic`` operations over whole vectors (the Lanczos updates and
/// dot products of fp64 carriers). Each loop gives, element by element, the value the
/// scalar operation gives; the rounding path (binary64, binary32 to nearest, general)
/// is chosen once outside the loop, so its per-element work stays inline. Called per
/// element from a large function, ``FormatArithmetic/fma(_:_:_:)`` was not inlined:
/// on SmolLM2-135M, 10% of an `slq` run was spent in calls to it. In binary64 the
/// element type's kernels run (``ComputeScalar/fusedAxpyBinary64(_:_:_:)``,
/// ``ComputeScalar/fusedDotsBinary64(_:_:_:)``): the package targets baseline x86-64, where
/// `addingProduct` is a call of the C library's `fma` per element (28% of an fp64-Krylov
/// `slq` run on SmolLM2-135M, four steps). Several vectors at once (a reorthogonalization
/// against the basis) read the updated or dotted vector once, and advance several
/// latency-bound dot-product chains together; every element sees the same operations in
/// the same order as one vector at a time.
extension FormatArithmetic {
    /// `y[i] ← fma(y[i], a, x[i])` for every i: `y[i] + a·x[i]` rounded once into the format.
    @inlinable
    public func fmaEach<X: BinaryFloatingPoint & ComputeScalar>(_ y: UnsafeMutableBufferPointer<Double>, _ a: Double, _ x: UnsafeBufferPointer<X>) {
        fmaEach(y, [a], [x])
    }

    /// `y[i] ← fma(y[i], a[m], xs[m][i])` for m = 0, 1, … in order, for every i: the
    /// updates one after the other, each rounded once into the format.
    @inlinable
    public func fmaEach<X: BinaryFloatingPoint & ComputeScalar>(_ y: UnsafeMutableBufferPointer<Double>, _ a: [Double],
                                                                _ xs: [UnsafeBufferPointer<X>]) {
        precondition(a.count == xs.count && xs.allSatisfy { $0.count == y.count }, "fmaEach: length mismatch")
        if fast == 3 && y.count > 0 {
            let done = a.withUnsafeBufferPointer { a in
                xs.map(\.baseAddress).withUnsafeBufferPointer { X.fusedAxpyBinary64(a, $0, y) }
            }
            if done { return }
        }
        for (a, x) in zip(a, xs) {
            switch fast {
            case 3:
                for i in 0..<y.count { y[i] = y[i].addingProduct(a, Double(x[i])) }
            case 1:
                for i in 0..<y.count {
                    let yi = y[i], xi = Double(x[i])
                    if let r = Self.binary32(sum: yi, a * xi) { y[i] = r } else { y[i] = fma(yi, a, xi) }
                }
            default:
                for i in 0..<y.count { y[i] = fma(y[i], a, Double(x[i])) }
            }
        }
    }

    /// `s ← fma(s, x[i], y[i])` for i in order from s = +0: the recursive dot product in
    /// the format, each step rounded once.
    @inlinable
    public func fmaSum<X: BinaryFloatingPoint & ComputeScalar>(_ x: UnsafeBufferPointer<X>, _ y: UnsafeBufferPointer<Double>) -> Double {
        fmaSums([x], y)[0]
    }

    /// ``fmaSum(_:_:)`` of every `xs[m]` with the same `y`.
    @inlinable
    public func fmaSums<X: BinaryFloatingPoint & ComputeScalar>(_ xs: [UnsafeBufferPointer<X>], _ y: UnsafeBufferPointer<Double>) -> [Double] {
        precondition(xs.allSatisfy { $0.count == y.count }, "fmaSum: length mismatch")
        if fast == 3 && y.count > 0 {
            var out = [Double](repeating: 0, count: xs.count)
            let done = out.withUnsafeMutableBufferPointer { out in
                xs.map(\.baseAddress).withUnsafeBufferPointer { X.fusedDotsBinary64($0, y, out) }
            }
            if done { return out }
        }
        return xs.map { x in
            var s = 0.0
            switch fast {
            case 3:
                for i in 0..<x.count { s = s.addingProduct(Double(x[i]), y[i]) }
            case 1:
                for i in 0..<x.count {
                    let xi = Double(x[i]), yi = y[i]
                    if let r = Self.binary32(sum: s, xi * yi) { s = r } else { s = fma(s, xi, yi) }
                }
            default:
                for i in 0..<x.count { s = fma(s, Double(x[i]), y[i]) }
            }
            return s
        }
    }
}
