import Scalars

/// A dense row-major matrix of any scalar.
public struct Matrix<T: ComputeScalar>: Sendable {
    public let rows: Int
    public let cols: Int
    public var storage: [T]

    @inlinable
    public init(rows: Int, cols: Int, storage: [T]) {
        precondition(storage.count == rows * cols, "Matrix: \(storage.count) elements for \(rows)×\(cols)")
        self.rows = rows; self.cols = cols; self.storage = storage
    }

    @inlinable
    public init(rows: Int, cols: Int, repeating value: T = .zero) {
        self.init(rows: rows, cols: cols, storage: [T](repeating: value, count: rows * cols))
    }

    /// The identity.
    @inlinable
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    @inlinable
    public subscript(i: Int, j: Int) -> T {
        get { storage[i * cols + j] }
        set { storage[i * cols + j] = newValue }
    }

    /// Aᵀ, copied in 32×32 tiles (both sides stay in cache; a plain double loop strides
    /// through one of them).
    @inlinable
    public func transposed() -> Matrix {
        let r = rows, c = cols
        let out = [T](unsafeUninitializedCapacity: r * c) { t, count in
            storage.withUnsafeBufferPointer { a in
                let tile = 32
                for i0 in stride(from: 0, to: r, by: tile) {
                    let i1 = Swift.min(i0 + tile, r)
                    for j0 in stride(from: 0, to: c, by: tile) {
                        let j1 = Swift.min(j0 + tile, c)
                        for i in i0..<i1 { for j in j0..<j1 { (t.baseAddress! + (j * r + i)).initialize(to: a[i * c + j]) } }
                    }
                }
            }
            count = r * c
        }
        return Matrix(rows: c, cols: r, storage: out)
    }

    /// Replaces a square matrix by (A + Aᵀ)/2, entry pair by entry pair.
    @inlinable
    public mutating func symmetrize() {
        precondition(rows == cols, "symmetrize: matrix is \(rows)×\(cols)")
        for i in 0..<rows { for j in 0..<i { let v = (self[i, j] + self[j, i]) / 2; self[i, j] = v; self[j, i] = v } }
    }

    /// Elementwise conversion through Double (exact for formats inside binary64).
    @inlinable
    public func converted<U: ComputeScalar>(to: U.Type = U.self) -> Matrix<U> {
        Matrix<U>(rows: rows, cols: cols, storage: storage.map { U(roundingDouble: $0.doubleValue) })
    }

    /// Column `j` as an array.
    @inlinable
    public func column(_ j: Int) -> [T] { (0..<rows).map { self[$0, j] } }
}
