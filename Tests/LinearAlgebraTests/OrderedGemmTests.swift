import Testing
@testable import LinearAlgebra
import Scalars

/// The SIMD matrix product keeps each output's summation order: bit-identical to the
/// scalar dot-product loop for every shape (remainders of the 4-row and 8/4-column
/// blocks included) and for special values (signed zeros, subnormals, infinities).
@Suite struct OrderedGemmTests {
    func random<T: ComputeScalar>(_ rows: Int, _ cols: Int, _ g: inout SplitMix64, special: Bool) -> Matrix<T> {
        let specials: [Double] = [0, -0.0, 0x1p-140, -0x1p-130, 1e30, .infinity, 3e38, -3e38]
        return Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in
            if special && g.next() % 5 == 0 { return T(roundingDouble: specials[Int(g.next() % UInt64(specials.count))]) }
            return T(roundingDouble: (g.nextUniform() - 0.5) * Double.pow(2, Double(Int(g.next() % 40)) - 20))
        })
    }

    func check<T: ComputeScalar>(_: T.Type, _ acc: Accumulation, special: Bool) {
        var g = SplitMix64(seed: 11)
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (4, 8, 8), (5, 9, 17), (9, 33, 13), (13, 64, 40), (7, 1, 9), (2, 300, 3)] {
            let a: Matrix<T> = random(m, k, &g, special: special), b: Matrix<T> = random(k, n, &g, special: special)
            let fast = OrderedGemm.gemm(a, b, acc)!
            let slow = Kernels.gemmLoop(a, b, accumulation: acc)
            let same = zip(fast.storage, slow.storage).allSatisfy { x, y in
                x.doubleValue.bitPattern == y.doubleValue.bitPattern || (x.isNaN && y.isNaN)
            }
            #expect(same, "\(T.self) \(acc) \(m)×\(k)×\(n)")
            // Through the public entry point too.
            #expect(Kernels.gemm(a, b, accumulation: acc).storage.map(\.doubleValue.bitPattern) == fast.storage.map(\.doubleValue.bitPattern)
                    || special)
        }
    }

    @Test func bitIdenticalToTheDotLoop() {
        for special in [false, true] {
            check(Float.self, .recursive, special: special)
            check(Double.self, .recursive, special: special)
            check(BFloat16.self, .widened(.fp32), special: special)
            check(BFloat16.self, .widened(.fp64), special: special)
            check(LowPrecisionFloat<FP16Spec, NearestEven>.self, .widened(.fp32), special: special)
            check(Float.self, .widened(.fp64), special: special)
            checkDual(special: special)
        }
    }

    /// `Dual<Double>` (the fp64 exact HVP): values and tangents bit for bit those of the
    /// dual dot-product loop, random tangents included.
    func checkDual(special: Bool) {
        var g = SplitMix64(seed: 13)
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (4, 8, 8), (5, 9, 17), (9, 33, 13), (2, 300, 3), (7, 1, 9), (8, 40, 24), (6, 17, 35)] {
            let va: Matrix<Double> = random(m, k, &g, special: special), ta: Matrix<Double> = random(m, k, &g, special: special)
            let vb: Matrix<Double> = random(k, n, &g, special: special), tb: Matrix<Double> = random(k, n, &g, special: special)
            let a = Matrix(rows: m, cols: k, storage: zip(va.storage, ta.storage).map { Dual($0, $1) })
            let b = Matrix(rows: k, cols: n, storage: zip(vb.storage, tb.storage).map { Dual($0, $1) })
            let fast = OrderedGemm.gemm(a, b, .recursive)!
            let slow = Kernels.gemmLoop(a, b, accumulation: .recursive)
            func bits(_ x: Dual<Double>) -> [UInt64] { [x.value.isNaN ? 1 : x.value.bitPattern, x.tangent.isNaN ? 1 : x.tangent.bitPattern] }
            #expect(fast.storage.map(bits) == slow.storage.map(bits), "Dual<Double> \(m)×\(k)×\(n) special \(special)")
            // Every instance of the C kernel (baseline, AVX2, AVX-512; capped at what this CPU runs).
            for level: Int32 in [0, 1, 2] {
                let c = OrderedGemm.dualDouble(m, k, n, a.storage, b.storage, level: level)
                #expect(c.map(bits) == slow.storage.map(bits), "Dual<Double> level \(level) \(m)×\(k)×\(n) special \(special)")
            }
        }
    }

    /// Products whose rounding order matters: the loop order (not a tree or a fused
    /// multiply-add) is what the fast kernel reproduces.
    @Test func orderIsTheDefinitionNotAnyOther() {
        // 1 + 2⁻²⁴ + 2⁻²⁴ in Float: sequentially both small terms are lost.
        let a = Matrix<Float>(rows: 1, cols: 3, storage: [1, 0x1p-24, 0x1p-24])
        let b = Matrix<Float>(rows: 3, cols: 8, storage: [Float](repeating: 1, count: 24))
        let c = OrderedGemm.gemm(a, b, .recursive)!
        #expect(c.storage.allSatisfy { $0 == 1 })
        // No fused multiply-add: (1 + 2⁻²³)·(1 − 2⁻²³) rounds to 1 before the −1 is added.
        let x = Matrix<Float>(rows: 1, cols: 2, storage: [1 + 0x1p-23, -1])
        let y = Matrix<Float>(rows: 2, cols: 8, storage: [Float](repeating: 1 - 0x1p-23, count: 8) + [Float](repeating: 1, count: 8))
        #expect(OrderedGemm.gemm(x, y, .recursive)!.storage.allSatisfy { $0 == 0 })
    }
}

/// The specialized axpy is the same fused update as the generic loop, element by
/// element, and leaves other references to the old `y` untouched.
@Suite struct SpecializedAxpyTests {
    func check<T: ComputeScalar>(_: T.Type) {
        var g = SplitMix64(seed: 3)
        let x = (0..<37).map { _ in T(roundingDouble: g.nextUniform() - 0.5) }
        let y0 = (0..<37).map { _ in T(roundingDouble: g.nextUniform() * 3) }
        let a = T(roundingDouble: 0.3)
        var y = y0
        let alias = y
        Kernels.axpy(a, x, &y)
        #expect(y.indices.allSatisfy { y[$0].doubleValue.bitPattern == y0[$0].addingProduct(a, x[$0]).doubleValue.bitPattern }, "\(T.self)")
        #expect(alias.map(\.doubleValue) == y0.map(\.doubleValue), "copy-on-write kept")
    }
    @Test func sameAsTheGenericLoop() {
        check(Float.self); check(Double.self); check(BFloat16.self); check(LowPrecisionFloat<FP16Spec, NearestEven>.self)
    }
}
