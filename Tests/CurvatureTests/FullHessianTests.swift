import Testing
import RealModule
@testable import Models
@testable import Curvature
import LinearAlgebra
@testable import Scalars
import TestSupport

@Suite struct FullHessianTests {
    @Test func fullHessianIsSymmetricAndEqualsAForQuadratics() throws {
        for (name, model) in try smallModels() {
            let theta = model.initialParameters(seed: 6)
            let (h, asym) = FullHessian.compute(model, theta: theta)
            #expect(asym <= 4e-16 * Double(model.parameterCount), "\(name): ‖H−Hᵀ‖/‖H‖ = \(asym)")
            if let q = model as? QuadraticModel {
                let a = q.dense ?? {
                    var m = Matrix<Double>(rows: q.diagonal!.count, cols: q.diagonal!.count)
                    for (i, d) in q.diagonal!.enumerated() { m[i, i] = d }
                    return m
                }()
                #expect(h.storage == a.storage, "\(name): H = A")
                let eig = try SymmetricEigen.decompose(h, vectors: false).values
                for (x, y) in zip(eig, q.eigenvalues) { #expect(abs(x - y) < 1e-13) }
            }
        }
        let (hR, asymR) = FullHessian.compute(try smallModels()[4].1, theta: toR(try smallModels()[4].1.initialParameters(seed: 6)))
        #expect(asymR < 1e-70 && hR.rows == 51)
    }
}
