import Testing
import RealModule
import Scalars

@inline(never) func genericExp<T: Real>(_ x: T) -> T { T.exp(x) }
@inline(never) func genericMul<T: Real>(_ a: T, _ b: T) -> T { a * b }
@inline(never) func genericFromDouble<T: StudyScalar>(_ d: Double, _: T.Type) -> T { T(roundingDouble: d) }

/// Generic code (witness-table dispatch) and concrete code give the same results.
@Suite struct GenericDispatchTests {
    @Test func bf16GenericMatchesConcrete() {
        var g = SplitMix64(seed: 1)
        for _ in 0..<2000 {
            let d = 4 * g.nextUniform() - 2
            let x = BFloat16(d), y = BFloat16(2 * g.nextUniform())
            #expect(genericExp(x).bitPattern == BFloat16.exp(x).bitPattern, "exp(\(x))")
            #expect(genericMul(x, y).bitPattern == (x * y).bitPattern)
            #expect(genericFromDouble(d, BFloat16.self).bitPattern == BFloat16(roundingDouble: d).bitPattern)
        }
    }
}
