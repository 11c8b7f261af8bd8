import Foundation
import Testing
import RealModule
import Scalars
import Models
import Curvature
@testable import Studies

/// Runs every unit of a study in order and finishes it.
func runAll(_ s: some Study) throws -> StudyOutput {
    let ctx = StudyContext()
    return try s.finish(s.units.indices.map { try s.run(unit: $0, context: ctx) })
}

func column(_ t: StudyTable, _ name: String) -> [String] {
    let i = t.header.firstIndex(of: name)!
    return t.rows.map { $0[i] }
}
func numbers(_ t: StudyTable, _ name: String) -> [Double] { column(t, name).map { Double($0) ?? .nan } }
func table(_ o: StudyOutput, _ name: String) -> StudyTable { o.tables.first { $0.name == name }! }

let fp64 = try! PrecisionPolicy("")
let fp32 = try! PrecisionPolicy("param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32")

@Suite struct FDBiasStudyTests {
    /// expsum has a closed-form third derivative: the fitted truncation constant of
    /// central and forward differences matches ‖w e^θ v^{k+1}‖ / (c_k ‖w e^θ v‖), and
    /// bias_rel (the mpfr256 FD against the mpfr256 exact HVP) is A ε^k to first order.
    @Test func fittedTruncationConstantMatchesTheClosedForm() throws {
        let eps = logGrid(from: 1e-4, to: 1e-2, points: 5)
        let s = try FDBiasStudy(.init(models: ["expsum:n=40"], policies: [fp64], schemes: [.forward, .central],
                                      stepPolicies: ["absolute"], eps: eps, seeds: [3], tolerance: 1e-2))
        let out = try runAll(s)
        let ctx = StudyContext()
        let setup = try ModelSetup.make("expsum:n=40", seed: 3, param: ScalarFormat("fp64"), context: ctx)
        let m = setup.model as! ExpSumModel
        let fits = table(out, "fits")
        for (row, k) in zip(0..<2, [1, 2]) {
            let a = m.truncationConstant(theta: setup.theta, v: setup.v, order: k)
            let fitA = Double(fits.rows[row][fits.header.firstIndex(of: "fit_a")!])!
            // Next-order terms are O(ε) (forward) and O(ε²) (central) relative at ε ≤ 1e-2.
            #expect(abs(fitA / a - 1) < (k == 1 ? 2e-2 : 1e-3), "k=\(k): fit_a \(fitA), closed form \(a)")
            #expect(fits.rows[row][fits.header.firstIndex(of: "fit_points_a")!] == "5")
            let pts = table(out, "points").rows.filter { $0[4] == (k == 1 ? "forward" : "central") }
            let bias = pts.map { Double($0[table(out, "points").header.firstIndex(of: "bias_rel")!])! }
            for (e, b) in zip(eps, bias) { #expect(abs(b / (a * Double.pow(e, k)) - 1) < (k == 1 ? 2e-2 : 1e-3)) }
        }
    }

    /// A quadratic's central difference has no truncation error: bias_rel is at the
    /// mpfr256 rounding level, rel_err equals noise_rel, no truncation-dominated
    /// point exists and eps_star is +∞; the rounding error falls like 1/ε.
    @Test func quadraticCentralErrorIsPureRounding() throws {
        let eps = logGrid(from: 1e-6, to: 1e-1, points: 6)
        let s = try FDBiasStudy(.init(models: ["quadratic:mp:n=50,ratio=0.5"], policies: [fp32], schemes: [.central],
                                      stepPolicies: ["absolute"], eps: eps, seeds: [0], tolerance: 1e-2))
        let out = try runAll(s)
        let p = table(out, "points")
        for b in numbers(p, "bias_rel") { #expect(b < 1e-60) }
        for (e, n) in zip(numbers(p, "rel_err"), numbers(p, "noise_rel")) { #expect(abs(e / n - 1) < 1e-12) }
        let slope = logLogFit(x: eps, y: numbers(p, "rel_err"))!.slope
        #expect(slope < -0.8 && slope > -1.2, "slope \(slope)")
        let f = table(out, "fits")
        // Unresolved truncation: no constant, no ε*, no err* — empty cells and the reason, never 0 or ∞.
        #expect(column(f, "fit_points_a") == ["0"] && column(f, "fit_a") == [""] && column(f, "eps_star") == [""] && column(f, "err_star") == [""])
        #expect(column(f, "fit_note")[0].hasPrefix("truncation unresolved") && column(f, "fit_eps_hi") == [""])
    }

    /// The fp64 reference (for models too large for mpfr256) against the mpfr256 one on
    /// the same sweep of a bf16 MLP: rel_err and noise_rel agree to ≥ 6 significant digits
    /// at every ε, bias_rel wherever truncation dominates (where rounding does, the fp64
    /// ĥ_ref(ε) carries its own ~u₆₄/ε rounding, far below the measured noise). The
    /// fitted constants agree to 3 digits. (Checks that ModelSetup switches every
    /// quantity to the fp64 reference, not only rel_err.)
    @Test func fp64ReferenceAgreesWithMpfr256() throws {
        let eps = logGrid(from: 1e-5, to: 1, points: 11)
        let bf16 = try PrecisionPolicy("param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32")
        func run(_ r: ReferenceKind) throws -> StudyOutput {
            try runAll(try FDBiasStudy(.init(models: ["mlp:widths=5-7-3,act=tanh,samples=12"], policies: [bf16, fp32], schemes: [.forward, .central],
                                             stepPolicies: ["absolute"], eps: eps, seeds: [1], tolerance: 5e-2, reference: r)))
        }
        let m = try run(.mpfr256), d = try run(.fp64)
        let pm = table(m, "points"), pd = table(d, "points")
        func digits(_ a: Double, _ b: Double) -> Double { a == b ? 17 : -Double.log10(abs(a - b) / abs(a)) }
        for name in ["rel_err", "noise_rel", "cos_align"] {
            for (a, b) in zip(numbers(pm, name), numbers(pd, name)) { #expect(digits(a, b) >= 6, "\(name): \(a) vs \(b)") }
        }
        var truncationPoints = 0
        for (i, (a, b)) in zip(numbers(pm, "bias_rel"), numbers(pd, "bias_rel")).enumerated() where a > 10 * numbers(pm, "noise_rel")[i] {
            truncationPoints += 1
            #expect(digits(a, b) >= 6, "bias_rel at row \(i): \(a) vs \(b)")
        }
        #expect(truncationPoints >= 8)
        let fm = table(m, "fits"), fd = table(d, "fits")
        for name in ["fit_a", "fit_b", "eps_star"] {
            for (a, b) in zip(numbers(fm, name), numbers(fd, name)) where a.isFinite { #expect(digits(a, b) >= 3, "\(name): \(a) vs \(b)") }
        }
        #expect(column(fm, "fit_points_a") == column(fd, "fit_points_a") && column(fm, "fit_points_b") == column(fd, "fit_points_b"))
        // Not the same numbers by accident: the fp64 setup holds no mpfr256 HVP.
        let ctx = StudyContext()
        let s = try ModelSetup.make("mlp:widths=5-7-3,act=tanh,samples=12", seed: 1, param: ScalarFormat("bf16"), reference: .fp64, context: ctx)
        #expect(s.hRef.isEmpty && s.hRef64.count == s.model.parameterCount && s.reference == .fp64)
    }

    @Test func badConfigurationsAreRejected() {
        #expect(throws: StudyError.self) {
            try FDBiasStudy(.init(models: [], policies: [fp64], schemes: [.central], stepPolicies: ["absolute"], eps: [1e-3], seeds: [0], tolerance: 1e-2))
        }
        for bad in [0.0, -1e-3, .nan, .infinity] {
            #expect(throws: StudyError.self) {
                try FDBiasStudy(.init(models: ["expsum:n=4"], policies: [fp64], schemes: [.central], stepPolicies: ["absolute"],
                                      eps: [bad], seeds: [0], tolerance: 1e-2))
            }
        }
        #expect(throws: StudyError.self) {
            try FDBiasStudy(.init(models: ["expsum:n=4"], policies: [fp64], schemes: [.central], stepPolicies: ["sideways"], eps: [1e-3], seeds: [0], tolerance: 1e-2))
        }
    }
}

@Suite struct NoiseAndKrylovTests {
    /// Stochastic-rounding replicates: the spread falls like 1/ε (slope ≈ −1).
    @Test func stochasticRoundingNoiseSlopeIsMinusOne() throws {
        let sr = try PrecisionPolicy("param=bf16,compute=bf16,accumulate=fp32,grad=bf16,hvp=fp32,rounding=stochastic")
        let s = try NoiseAmplificationStudy(.init(models: ["mlp:widths=6-8-3,samples=16"], policies: [sr], schemes: [.central],
                                                  stepPolicies: ["absolute"], eps: logGrid(from: 1e-4, to: 1e-1, points: 4),
                                                  seeds: [0], vary: [.stochasticRounding], replicates: 6, shards: [1]))
        let out = try runAll(s)
        let slope = Double(table(out, "slopes").rows[0][NoiseAmplificationStudy.slopesHeader.firstIndex(of: "noise_slope")!])!
        #expect(slope > -1.2 && slope < -0.8, "noise_slope \(slope)")
        #expect(table(out, "replicates").rows.count == 24)
        // Nearest rounding only: no stochastic-rounding replicates can be formed.
        #expect(throws: StudyError.self) {
            try NoiseAmplificationStudy(.init(models: ["expsum:n=4"], policies: [fp32], schemes: [.central], stepPolicies: ["absolute"],
                                              eps: [1e-3], seeds: [0], vary: [.stochasticRounding], replicates: 4, shards: [1]))
        }
    }

    /// Shard counts change only the summation order of the gradient reduce-scatter:
    /// in fp64 the spread is at the rounding level, and a single shard count gives none.
    @Test func shardReplicatesDifferOnlyByRounding() throws {
        let s = try NoiseAmplificationStudy(.init(models: ["mlp:widths=4-6-3,samples=12"], policies: [fp64], schemes: [.central],
                                                  stepPolicies: ["absolute"], eps: [1e-3], seeds: [0], vary: [.shards],
                                                  replicates: 2, shards: [1, 2, 3]))
        let n = numbers(table(try runAll(s), "points"), "noise_std_rel")[0]
        #expect(n > 0 && n < 1e-10, "noise_std_rel \(n)")
    }

    /// On a quadratic with a known spectrum, FD-HVP Lanczos in fp64 with full
    /// reorthogonalization stays orthogonal to working precision and finds the top
    /// eigenvalues; without reorthogonalization orthogonality is lost once Ritz
    /// values converge (Paige), which the study records.
    @Test func orthogonalityAndRitzAccuracyOnAQuadratic() throws {
        let s = try KrylovStabilityStudy(.init(models: ["quadratic:diag:n=80,lo=0.01,hi=1,dist=log"], policies: [fp64], schemes: [.central],
                                               stepPolicies: ["absolute"], eps: [1e-4], reorth: [.none, .full], steps: 60,
                                               checkpoints: [20, 60], probes: 1, seeds: [0]))
        let out = try runAll(s)
        let sum = table(out, "summary")
        let orth = numbers(sum, "orth_loss_max"), top = numbers(sum, "ritz_err_top_1")
        let reorth = column(sum, "reorth"), steps = column(sum, "steps")
        for i in sum.rows.indices where steps[i] == "60" {
            if reorth[i] == "full" { #expect(orth[i] < 1e-12) } else { #expect(orth[i] > 1e-6, "none: orth_loss \(orth[i])") }
            #expect(top[i] < 1e-8)
        }
        #expect(table(out, "region").rows.count == 4)
        #expect(table(out, "lanczos").rows.count == 120)
    }

    /// `spectrum: lanczos` (models too large for a dense Hessian) on a network small
    /// enough for both: the top Ritz errors, ghosts and the trust verdict match the dense
    /// spectrum's; the columns that need the whole spectrum are empty, and the reference
    /// run's Ritz values go to reference_ritz.csv. A reference whose top Ritz values have
    /// not converged is refused.
    @Test func lanczosReferenceSpectrumMatchesTheDenseOne() throws {
        let bf16 = try PrecisionPolicy("param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32")
        func run(_ source: KrylovStabilityStudy.SpectrumSource, referenceSteps: Int? = nil) throws -> StudyOutput {
            try runAll(try KrylovStabilityStudy(.init(models: ["mlp:widths=4-8-3,act=tanh,samples=16"], policies: [fp32, bf16], schemes: [.central],
                                                      stepPolicies: ["absolute"], eps: [1e-2], reorth: [.none, .full], steps: 20,
                                                      checkpoints: [10, 20], probes: 2, seeds: [0], spectrum: source, referenceSteps: referenceSteps)))
        }
        let d = try run(.dense), l = try run(.lanczos, referenceSteps: 60)
        let sd = table(d, "summary"), sl = table(l, "summary")
        #expect(sd.rows.count == 8 && sl.rows.count == 8)
        for name in ["ritz_err_top_1", "ritz_err_top_2", "ritz_err_top_3"] {
            for (a, b) in zip(numbers(sd, name), numbers(sl, name)) { #expect(abs(a - b) <= 1e-6 * max(a, 1e-3), "\(name): \(a) vs \(b)") }
        }
        #expect(column(sd, "ghost_count") == column(sl, "ghost_count") && column(sd, "trustworthy") == column(sl, "trustworthy"))
        #expect(column(sd, "unconverged_count") == column(sl, "unconverged_count"))
        for name in ["spurious_count", "w1_scaled", "ks"] {
            #expect(column(sl, name).allSatisfy(\.isEmpty) && column(sd, name).allSatisfy { !$0.isEmpty })
        }
        #expect(!l.tables.contains { $0.name == "spectrum" } && !d.tables.contains { $0.name == "reference_ritz" })
        let rr = table(l, "reference_ritz")
        #expect(rr.rows.count > 20 && column(rr, "converged").suffix(3) == ["1", "1", "1"])
        #expect(throws: StudyError.self) { try run(.lanczos, referenceSteps: 3) }
    }
}

@Suite struct RegimesTests {
    func row(_ model: String, _ seed: Int, star: Double, lo: Double, hi: Double, best: Double) -> [String: String] {
        ["model": model, "policy": "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32", "param": "fp32", "compute": "fp32", "grad": "fp32",
         "scheme": "central", "step_policy": "absolute", "seed": "\(seed)", "order_k": "2", "u": "\(0x1p-24)", "tolerance": "0.01",
         "fit_a": "0.1", "fit_b": "1.0", "eps_star": "\(star)", "meas_eps_lo": "\(lo)", "meas_eps_hi": "\(hi)", "meas_eps_best": "\(best)",
         "err_star": "\(ErrorModelFit(k: 2, u: 0x1p-24, a: 0.1, b: 1, pointsA: 0, pointsB: 0).errStar)", "meas_err_min": "1e-3"]
    }

    /// ε* is the geometric mean of the curves' ε*, the band their intersection, the
    /// predicted error the geometric mean of the fitted models at ε*, and the floor that
    /// of each curve's own minimum (capped by the measured minimum).
    @Test func derivation() throws {
        let s = try RegimesStudy(.init(fits: [row("expsum:n=8", 0, star: 1e-3, lo: 1e-5, hi: 1e-1, best: 1e-3),
                                              row("expsum:n=8", 1, star: 1e-2, lo: 1e-4, hi: 1e-2, best: 1e-2)],
                                       krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5]))
        let e = s.entries[0]
        #expect(abs(e.epsStar / 0.1.squareRoot() / 1e-2 - 1) < 1e-12)
        #expect(e.epsLo == 1e-4 && e.epsHi == 1e-2 && e.curves == 2 && e.bandCurves == 2)
        let f = ErrorModelFit(k: 2, u: 0x1p-24, a: 0.1, b: 1, pointsA: 0, pointsB: 0)
        #expect(abs(e.predictedErr / f.err(e.epsStar) - 1) < 1e-14)
        #expect(abs(e.errFloor / min(f.errStar, 1e-3) - 1) < 1e-14 && e.feasible == (e.predictedErr <= 0.01))
        #expect(e.calibration.models == ["expsum:n=8"] && e.calibration.parametersMin == 8 && e.normalization == "absolute")
        #expect(e.lanczosMaxSteps == 0 && e.lanczosEpsTested == nil)
        let out = try runAll(s)
        let file = try RegimesFile.decode(out.files[0].data, path: "regimes.json")
        #expect(file.version == 3 && file.entries.count == 1 && file.entries[0].validatedErr != nil)
        let v = try #require(file.entries[0].validation), pm = try #require(file.entries[0].perModel)
        let (step, ok) = RegimeEntry.recommendation(staticOK: v.ok, perModel: pm)
        #expect(file.entries[0].recommendedStep == step && file.entries[0].validatedOK == ok && v.models == ["expsum:n=16 seed 5"] && pm.models == v.models)
        let row = table(out, "validation")
        let ratio = numbers(row, "pred_over_meas")[0]
        #expect(abs(ratio - e.predictedErr / numbers(row, "rel_err")[0]) < 1e-12 * ratio && abs(v.ratioMedian! - ratio) < 1e-12 * ratio)
        // expsum (closed-form derivatives): the per-model step lands near the best ε of the grid.
        #expect(pm.epsRatioWorst! <= 3 && pm.ratioWorst! <= 2, "\(pm)")
    }

    /// The held-out rule (docs/NUMERICS.md §10). Where some grid ε meets the tolerance,
    /// predicted/measured at the step's ε and its ε over the grid's best are judged; where
    /// none does, the step must say so, and its floor is judged against the grid's best
    /// error whatever error its own ε gave.
    @Test func validationRule() {
        typealias V = RegimeEntry.Validation
        func o(_ pred: Double, _ meas: Double, floor: Double? = nil, claims: Bool = true, best: Double, eps: Double = 1) -> V.Outcome {
            .init(predicted: pred, measured: meas, floor: floor ?? pred, claimsFeasible: claims, gridBest: best, epsOverBest: eps, tolerance: 0.05)
        }
        func v(_ os: [V.Outcome]) -> V { V(models: os.indices.map { "m\($0)" }, outcomes: os) }
        let feasible = [o(0.02, 0.01, best: 0.01, eps: 2), o(0.01, 0.02, best: 0.02, eps: 0.5), o(0.03, 0.03, best: 0.02, eps: 2.9)]
        let good = v(feasible)
        #expect(good.ok && good.modelsFeasible == 3 && good.falseFeasible == 0 && good.ratioMedian == 1 && good.ratioWorst == 2 && good.epsRatioWorst == 2.9)
        // ε more than 3× from the grid's best on a feasible model fails; so do a worst ratio
        // beyond 3 and a median beyond 2.
        #expect(!v(feasible + [o(0.02, 0.02, best: 0.02, eps: 1 / 3.1)]).ok)
        #expect(!v(feasible + [o(0.02, 0.0065, best: 0.005)]).ok)
        #expect(!v([o(0.05, 0.02, best: 0.02), o(0.05, 0.02, best: 0.02), o(0.01, 0.01, best: 0.01)]).ok)
        // An infeasible model (grid best 0.5 > 0.05): the step says so and states a floor of
        // 0.4. It passes although its own ε measured 12 and sits 50× from the grid's best.
        let infeasible = o(0.4, 12, claims: false, best: 0.5, eps: 50)
        let withInfeasible = v(feasible + [infeasible])
        #expect(withInfeasible.ok && withInfeasible.modelsFeasible == 3 && withInfeasible.epsRatioWorst == 2.9)
        #expect(abs(withInfeasible.ratioWorst! - 2) < 1e-15)
        // Claiming feasibility there fails, and a floor 5× off the grid's best fails.
        var claimed = infeasible; claimed.claimsFeasible = true
        #expect(!v(feasible + [claimed]).ok && v(feasible + [claimed]).falseFeasible == 1)
        #expect(!v(feasible + [o(0.4, 0.4, floor: 0.1, claims: false, best: 0.5)]).ok)
        // Only infeasible models: no ε ratio is judged.
        let none = v([infeasible, o(1, 1, claims: false, best: 0.9)])
        #expect(none.ok && none.modelsFeasible == 0 && none.epsRatioWorst == nil)
        // A step that predicts nothing (NaN) fails, as does a zero measured error (its ratio
        // is undefined: nil in JSON, not inf), and so does an empty validation.
        #expect(!v(feasible + [o(.nan, 0.02, best: 0.02)]).ok)
        let zero = v(feasible + [o(0.01, 0, best: 0)])
        #expect(!zero.ok && zero.ratioWorst == nil && !v([]).ok)
        // The recommendation: the static ε when it passed, else the per-model step with its verdict.
        #expect(RegimeEntry.recommendation(staticOK: true, perModel: good) == ("static", true))
        #expect(RegimeEntry.recommendation(staticOK: false, perModel: good) == ("per_model", true))
        #expect(RegimeEntry.recommendation(staticOK: false, perModel: v([claimed])) == ("per_model", false))
        #expect(RegimeEntry.recommendation(staticOK: false, perModel: nil) == ("static", false))
    }

    /// A schema-2 regimes file is read as its consumers read it then: the static ε where it
    /// passed, the per-model step where only that passed; other versions and unknown steps are refused.
    @Test func schemaTwoFilesAreMigrated() throws {
        let s = try RegimesStudy(.init(fits: [row("expsum:n=8", 0, star: 1e-3, lo: 1e-5, hi: 1e-1, best: 1e-3)],
                                       krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5]))
        var file = try RegimesFile.decode(try runAll(s).files[0].data, path: "regimes.json")
        #expect(file.version == 3 && file.entries[0].recommendedStep != nil)
        let base = file.entries[0]
        file.entries = [base, base, base]
        file.entries[0].validatedOK = true
        file.entries[1].validatedOK = false; file.entries[1].perModel?.ok = true
        file.entries[2].validatedOK = false; file.entries[2].perModel?.ok = false
        for i in 0..<3 { file.entries[i].recommendedStep = nil }
        file.version = 2
        let old = try RegimesFile.decode(try file.json(), path: "old.json")
        #expect(old.entries.map { $0.recommendedStep } == ["static", "per_model", "static"])
        #expect(old.entries.map(\.validatedOK) == [true, true, false])
        file.version = 3
        #expect { try RegimesFile.decode(try file.json(), path: "new.json") } throws: { "\($0)".contains("recommended_step 'null'") }
        file.version = 1
        #expect { try RegimesFile.decode(try file.json(), path: "v1.json") } throws: { "\($0)".contains("version 1; expected") }
    }

    /// `validate.compute` validates only the entries of those compute formats; the others
    /// are written unvalidated, and a list that matches no entry is an error.
    @Test func validationLimitedToComputeFormats() throws {
        var bf = row("expsum:n=8", 0, star: 1e-2, lo: 1e-4, hi: 1e-1, best: 1e-2)
        bf["compute"] = "bf16"; bf["policy"] = "param=fp32,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32"
        let fits = [row("expsum:n=8", 0, star: 1e-3, lo: 1e-5, hi: 1e-1, best: 1e-3), bf]
        let s = try RegimesStudy(.init(fits: fits, krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5], validateCompute: ["FP32"]))
        #expect(s.entries.count == 2 && s.units.count == 1)
        let file = try RegimesFile.decode(try runAll(s).files[0].data, path: "regimes.json")
        let fp32 = try #require(file.entries.first { $0.compute == "fp32" }), bf16 = try #require(file.entries.first { $0.compute == "bf16" })
        #expect(fp32.validation?.models == ["expsum:n=16 seed 5"] && fp32.validatedErr != nil)
        #expect(bf16.validation == nil && bf16.perModel == nil && bf16.validatedErr == nil && !bf16.validatedOK)
        #expect { try RegimesStudy(.init(fits: fits, krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5], validateCompute: ["fp16"])) }
            throws: { "\($0)".contains("matches no entry (compute formats of the entries: fp32, bf16)") }
    }

    /// `validate.schemes` validates the entries of those schemes only, and together with
    /// `validate.compute` an entry must match both; a list matching nothing is an error.
    @Test func validationLimitedToSchemes() throws {
        var fwd = row("expsum:n=8", 0, star: 1e-2, lo: 1e-4, hi: 1e-1, best: 1e-2)
        fwd["scheme"] = "forward"; fwd["order_k"] = "1"
        var bf = row("expsum:n=8", 0, star: 1e-2, lo: 1e-4, hi: 1e-1, best: 1e-2)
        bf["compute"] = "bf16"; bf["policy"] = "param=fp32,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32"
        let fits = [row("expsum:n=8", 0, star: 1e-3, lo: 1e-5, hi: 1e-1, best: 1e-3), fwd, bf]
        func study(_ compute: [String]?, _ schemes: [String]?) throws -> RegimesStudy {
            try RegimesStudy(.init(fits: fits, krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5], validateCompute: compute, validateSchemes: schemes))
        }
        let s = try study(nil, ["Central"])
        #expect(s.entries.count == 3 && s.units.count == 2)
        let file = try RegimesFile.decode(try runAll(s).files[0].data, path: "regimes.json")
        let forward = try #require(file.entries.first { $0.scheme == "forward" })
        #expect(forward.validation == nil && !forward.validatedOK)
        #expect(file.entries.filter { $0.scheme == "central" }.allSatisfy { $0.validation?.models == ["expsum:n=16 seed 5"] })
        #expect(try study(["fp32"], ["central"]).units.count == 1)
        #expect { try study(nil, ["richardson"]) } throws: { "\($0)".contains("validate schemes [richardson] matches no entry (schemes of the entries: central, forward)") }
        #expect { try study(["bf16"], ["forward"]) } throws: { "\($0)".contains("together match no entry") }
    }

    /// The verdict: median predicted/measured within 2×, every one within 3×, every ε
    /// within 3× of the grid's best.
    @Test func validationMustBeHeldOut() {
        #expect(throws: StudyError.self) {
            try RegimesStudy(.init(fits: [self.row("expsum:n=8", 0, star: 1e-3, lo: 1e-5, hi: 1e-1, best: 1e-3)], krylov: [],
                                   validateModels: ["expsum:n=8"], validateSeeds: [0]))
        }
    }

    @Test func lanczosSettingsPickTheCheapestStableReorthogonalization() {
        func k(_ r: String, _ steps: Int, _ ok: Bool, eps: String = "0.001") -> [String: String] {
            ["param": "fp32", "grad": "fp32", "scheme": "central", "step_policy": "absolute", "eps": eps, "reorth": r,
             "steps": "\(steps)", "trustworthy": ok ? "1" : "0"]
        }
        let rows = [k("none", 20, true), k("none", 40, false), k("partial", 20, true), k("partial", 40, true),
                    k("full", 20, true), k("full", 40, true), k("none", 40, true, eps: "0.1")]
        let (r, s, e) = RegimesStudy.lanczosSettings(rows, param: "fp32", grad: "fp32", scheme: "central", step: "absolute", eps: 2e-3)
        #expect(r == "partial" && s == 40 && e == 1e-3)
    }

    @Test func regimesFileSchemaIsChecked() {
        #expect(throws: StudyError.self) { try RegimesFile.decode(Data("{\"schema\":\"other\",\"version\":1,\"entries\":[]}".utf8), path: "x") }
        #expect(throws: StudyError.self) { try RegimesFile.decode(Data("[1,2]".utf8), path: "x") }
    }
}

extension RegimesTests {
    /// Curves that miss the tolerance do not veto the band of the others; with none
    /// meeting it there is no band.
    @Test func bandFromTheCurvesThatMeetTheTolerance() throws {
        var missed = row("expsum:n=8", 1, star: 1e-2, lo: 1e-4, hi: 1e-2, best: 1e-2)
        missed["meas_eps_lo"] = ""; missed["meas_eps_hi"] = ""
        let s = try RegimesStudy(.init(fits: [row("expsum:n=8", 0, star: 1e-3, lo: 1e-5, hi: 1e-1, best: 1e-3), missed],
                                       krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5]))
        #expect(s.entries[0].epsLo == 1e-5 && s.entries[0].epsHi == 1e-1 && s.entries[0].bandCurves == 1)
        let none = try RegimesStudy(.init(fits: [missed], krylov: [], validateModels: ["expsum:n=16"], validateSeeds: [5]))
        #expect(none.entries[0].epsLo == nil && none.entries[0].bandCurves == 0)
    }
}

@Suite struct BlockDiagonalStudyTests {
    /// The study's exact cases: the full partition is H (all errors 0); softmax
    /// regression is linear in θ, so its GGN is H; a deep tanh MLP's per-layer blocks
    /// drop curvature of order one; the probe path (beyond max_dense) agrees with the
    /// dense path on the same probes.
    @Test func exactCasesAndDenseVersusProbes() throws {
        let models = ["softmax:d=4,classes=3,samples=8", "mlp:widths=4-6-6-3,samples=8"]
        let s = try BlockDiagonalStudy(.init(models: models, seeds: [0], partitions: [.full, .layer],
                                             approximations: [.blockDiagonal, .ggn, .kfac], probes: 4, maxDense: 1000))
        let t = table(try runAll(s), "summary")
        func value(_ model: String, _ approx: String, _ part: String, _ col: String) -> Double {
            let r = t.rows.first { $0[0] == model && $0[6] == approx && $0[7] == part }!
            return Double(r[t.header.firstIndex(of: col)!])!
        }
        for m in models {
            #expect(value(m, "block-diagonal", "full", "approx_rel_err") == 0 && value(m, "block-diagonal", "full", "approx_fro_rel") == 0)
            #expect(abs(value(m, "block-diagonal", "full", "topk_overlap") - 1) < 1e-9)
        }
        #expect(value(models[0], "ggn", "", "approx_fro_rel") < 1e-12)
        #expect(value(models[1], "block-diagonal", "layer", "approx_rel_err") > 0.1)
        #expect(t.rows.allSatisfy { $0[9] == "dense" && $0[15] == "exact" })
        // The same study with max_dense 0: probes only, Hutchinson Frobenius estimate, no spectral metrics.
        let p = try BlockDiagonalStudy(.init(models: [models[1]], seeds: [0], partitions: [.layer], approximations: [.blockDiagonal],
                                             probes: 4, maxDense: 0))
        let tp = table(try runAll(p), "summary")
        #expect(tp.rows[0][9] == "probes" && tp.rows[0][15] == "hutchinson(4)" && tp.rows[0][16] == "")
        let dense = value(models[1], "block-diagonal", "layer", "approx_rel_err")
        #expect(abs(Double(tp.rows[0][11])! / dense - 1) < 1e-10, "same probes, same products")
    }
}

@Suite struct ScalingStudyTests {
    @Test func tablesFitsAndLabelledExtrapolation() throws {
        // BLAS products (the gradient's and the exact HVP's through sgemm).
        let blas = try PrecisionPolicy("param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32")
        let s = try ScalingStudy(.init(models: ["mlp:widths=4-4-2,samples=8", "mlp:widths=8-16-4,samples=8", "mlp:widths=16-16-4,samples=8"],
                                       policy: blas, shards: [1, 2], schemes: [.central], repeats: 1, lanczosSteps: 3, memorySteps: 10,
                                       extrapolateTo: [1e9], fitMaxParameters: 300, computeBoundMinParameters: 1,
                                       extrapolateModels: ["mlp:widths=64-64-8,samples=8"]))
        #expect(s.exclusive)
        let out = try runAll(s)
        let t = table(out, "timings")
        #expect(t.rows.count == 6 && numbers(t, "time_grad_s").allSatisfy { $0 > 0 } && numbers(t, "peak_rss_bytes").allSatisfy { $0 > 1e6 })
        #expect(column(t, "lanczos_steps") == ["3", "3", "3", "3", "3", "3"])
        // The work columns: 8 samples, FLOPs of 4-4-2 = 2·8·(2·16 + 3·8), bytes = 4 bytes × values.
        #expect(column(t, "tokens").allSatisfy { $0 == "8" } && numbers(t, "flops_grad")[0] == 2 * 8 * (2 * 16 + 3 * 8))
        #expect(numbers(t, "bytes_grad")[0] == 4 * (4 * 30 + 4 * 8 * (8 + 6)))
        #expect(table(out, "fits").rows.count == 2 * 4)            // 2 shard counts × (grad, central, exact, lanczos step), mlp
        // The cost model: fitted on the two sizes ≤ 300 parameters (30, 212), the third (340) held out.
        let c = table(out, "costmodel")
        #expect(c.rows.count == 2 * 4 && column(c, "fit_points").allSatisfy { $0 == "2" } && column(c, "n_max").allSatisfy { $0 == "212.0" })
        // The products' and the passes' seconds enter at coefficient 1, fixed before the fit.
        #expect(numbers(c, "c_gemm").allSatisfy { $0 == 1 } && numbers(c, "c_pass").allSatisfy { $0 == 1 })
        #expect(numbers(c, "c_flop_s").allSatisfy { $0 >= 0 } && numbers(c, "c_byte_s").allSatisfy { $0 >= 0 } && numbers(c, "c_0_s").allSatisfy { $0 >= 0 })
        // Pass seconds measured per configuration: the gradient's and the central FD-HVP's.
        #expect(numbers(t, "pass_grad_s").allSatisfy { $0 > 0 } && numbers(t, "pass_hvp_central_s").allSatisfy { $0 > 0 })
        let p = table(out, "predictions")
        #expect(p.rows.count == 6 * 4 && column(p, "role").filter { $0 == "held-out" }.count == 2 * 4)
        let pred = numbers(p, "predicted_s"), meas = numbers(p, "measured_s"), ratio = numbers(p, "pred_over_meas")
        for i in pred.indices { #expect(abs(ratio[i] - pred[i] / meas[i]) < 1e-12) }
        // Every prediction is its cost model at its features, the pass seconds those of its
        // configuration (the gradient's, the central FD-HVP's for the FD-HVP and the Lanczos
        // step, none for the exact HVP).
        func cellOf(_ tb: StudyTable, _ r: [String], _ k: String) -> Double { Double(r[tb.header.firstIndex(of: k)!])! }
        for r in p.rows {
            let q = r[p.header.firstIndex(of: "quantity")!], sh = r[p.header.firstIndex(of: "shards")!]
            let cm = try #require(c.rows.first { $0[0] == q && $0[2] == sh })
            let want = cellOf(p, r, "gemm_s") * cellOf(c, cm, "c_gemm") + cellOf(p, r, "other_flops") * cellOf(c, cm, "c_flop_s")
                + cellOf(p, r, "bytes") * cellOf(c, cm, "c_byte_s") + cellOf(p, r, "pass_s") * cellOf(c, cm, "c_pass") + cellOf(c, cm, "c_0_s")
            #expect(abs(cellOf(p, r, "predicted_s") / want - 1) < 1e-12)
            let tr = try #require(t.rows.first { $0[0] == r[0] && $0[t.header.firstIndex(of: "shards")!] == sh })
            let passCol = q == "time_grad_s" ? "pass_grad_s" : q == "time_hvp_exact_s" ? nil : "pass_hvp_central_s"
            #expect(cellOf(p, r, "pass_s") == (passCol.map { cellOf(t, tr, $0) } ?? 0), "\(q)")
            // The exact HVP's products are its own (logged), timed at their shapes; its other
            // FLOPs none (an MLP's are all products), its bytes the gradient's as dual pairs
            // (the MLP's split reverse pass has no split or merge passes).
            if q == "time_hvp_exact_s" {
                #expect(cellOf(p, r, "gemm_s") == cellOf(t, tr, "gemm_s_exact") && cellOf(p, r, "other_flops") == 0)
                #expect(cellOf(p, r, "bytes") == 2 * cellOf(t, tr, "bytes_grad") && cellOf(t, tr, "bytes_dual_pass") == 0)
                #expect(cellOf(p, r, "flops") == cellOf(t, tr, "flops_gemm_exact"))
            }
        }
        // Every product of every model (and of the target) timed once per unit; a unit's
        // gemm_s_grad is the count-weighted sum of its rows. The MLP 4-4-2 runs three
        // products (the first layer has no input gradient): 8×4·4×4 NT, 4×8·8×4 TN, and
        // for layer 1 8×4·4×2 NT, 2×8·8×4 TN, 8×2·2×4 NN: five shapes, once each. Its exact
        // HVP runs each as a dual product, three real ones (value AB, tangent A'B + AB'),
        // but two in the first layer, where the data's tangent is zero (X·W'ᵀ and dY'ᵀ·X
        // remain): 2, 2, 3, 3, 3, 2176 FLOPs where the gradient's are 896.
        let g = table(out, "gemm")
        let first = g.rows.filter { $0[0] == "mlp:widths=4-4-2,samples=8" }
        #expect(first.count == 2 * 5 && first.allSatisfy { $0[6] == "1" && Double($0[8])! > 0 && Double($0[9])! > 0 })
        #expect(Set(first.map { $0[1...5].joined(separator: " ") + " \($0[7])" })
                == ["8 4 4 N T 2", "4 8 4 T N 2", "8 4 2 N T 3", "2 8 4 T N 3", "8 2 4 N N 3"])
        #expect(g.rows.contains { $0[0] == "mlp:widths=64-64-8,samples=8" })
        #expect(g.rows.filter { $0[0] == "mlp:widths=64-64-8,samples=8" }.allSatisfy { $0[7] == "0" })   // never run: no exact HVP
        let gemmS = numbers(t, "gemm_s_grad"), exactS = numbers(t, "gemm_s_exact")
        #expect(gemmS[0] > 0 && abs(gemmS[0] - first.prefix(5).reduce(0) { $0 + Double($1[6])! * Double($1[8])! }) < 1e-15)
        #expect(exactS[0] > 0 && abs(exactS[0] - first.prefix(5).reduce(0) { $0 + Double($1[7])! * Double($1[8])! }) < 1e-15)
        #expect(numbers(t, "flops_gemm_grad")[0] == numbers(t, "flops_grad")[0])          // an MLP's FLOPs are all products
        #expect(numbers(t, "flops_gemm_grad")[0] == 896 && numbers(t, "flops_gemm_exact")[0] == 2176)
        let e = table(out, "extrapolation")
        func at(_ r: [String], _ k: String) -> String { r[e.header.firstIndex(of: k)!] }
        let mem = e.rows.filter { at($0, "unit") == "bytes" }, time = e.rows.filter { at($0, "unit") == "s" }
        #expect(mem.allSatisfy { at($0, "label").hasPrefix("extrapolated") && at($0, "label").contains("param fp32 4") && at($0, "label").contains("measured only up to") })
        #expect(mem.allSatisfy { at($0, "quantity").hasPrefix("memory_") })
        // Times only from the work-based cost model of the target's family, each row with its
        // assumptions and the held-out check it rests on; never from a power law. Not the
        // exact HVP's: its products are logged from a run, and a target never runs.
        #expect(time.count == 3 && !time.contains { at($0, "quantity") == "time_hvp_exact_s" } && time.allSatisfy { at($0, "model") == "mlp:widths=64-64-8,samples=8" && at($0, "shards") == "1"
                                                     && Double(at($0, "value"))! > 0 && at($0, "family") == "mlp" && Double(at($0, "flops"))! > 0 })
        #expect(time.allSatisfy { at($0, "label").contains("cost model") && at($0, "label").contains("fitted on 30–212 parameters")
                                  && at($0, "label").contains("held-out sizes up to 340)") && at($0, "label").contains("timed at their shapes")
                                  && at($0, "label").contains("8 tokens per batch") && at($0, "label").contains("policy param=fp32")
                                  && at($0, "label").contains("O(n) passes at 1 measured size(s) of 340–340 parameters") })
        // Native memory model at 1e9 parameters, 2 shards, fp32 everywhere, full reorthogonalization with 11 vectors:
        // per shard 5e8 · (2·4 + 2·4 + 4 + 11·8) = 5.4e10 bytes (the policy leaves krylov at fp64); transient
        // full-size buffers 1e9 · (4 + 4) = 8e9.
        let row = e.rows.first { at($0, "shards") == "2" && at($0, "reorth") == "full" && at($0, "quantity") == "memory_sharded_per_shard_bytes" }!
        #expect(Double(at(row, "value")) == 5.4e10)
        #expect(Double(at(e.rows.first { at($0, "shards") == "2" && at($0, "reorth") == "full" && at($0, "quantity") == "memory_unsharded_transient_bytes" }!,
                          "value")) == 8e9)
    }

    /// Rounds: the units run round-major (every configuration once per round, the
    /// extrapolation targets' products too); a timing is the median of its rounds, a
    /// product shape's seconds the median of its rounds and `gemm_s_grad` their
    /// count-weighted sum; memory is measured in the first round only.
    @Test func timingsAreMediansOverRounds() throws {
        let models = ["mlp:widths=4-4-2,samples=8", "mlp:widths=8-16-4,samples=8", "mlp:widths=16-16-4,samples=8"]
        let s = try ScalingStudy(.init(models: models, policy: fp32, shards: [1], schemes: [.central], repeats: 3, lanczosSteps: 2,
                                       memorySteps: 10, extrapolateTo: [1e9], fitMaxParameters: 300, computeBoundMinParameters: 1,
                                       extrapolateModels: ["mlp:widths=64-64-8,samples=8"]))
        #expect(s.units.map(\.key) == (1...3).flatMap { r in models.map { "\($0)|1|round \(r)" } + ["products|mlp:widths=64-64-8,samples=8|round \(r)"] })
        let outputs = try s.units.indices.map { try s.run(unit: $0, context: StudyContext()) }
        #expect(outputs.enumerated().allSatisfy { i, o in (o.tables["memory"] != nil) == (i < 3) })
        let out = try s.finish(outputs)
        let t = table(out, "timings"), rd = table(out, "rounds"), g = table(out, "gemm")
        #expect(t.rows.count == 3 && column(t, "repeats") == ["3", "3", "3"])
        for (i, m) in models.enumerated() {
            for q in ["time_grad_s", "time_hvp_central_s", "time_hvp_exact_s", "time_lanczos_step_s", "pass_grad_s", "pass_hvp_central_s", "gemm_s_grad",
                      "gemm_s_exact"] {
                let xs = rd.rows.filter { $0[0] == m && $0[3] == q }.map { Double($0[4])! }
                #expect(xs.count == 3 && Set(rd.rows.filter { $0[0] == m && $0[3] == q }.map { $0[2] }) == ["1", "2", "3"])
                if !q.hasPrefix("gemm_s_") { #expect(numbers(t, q)[i] == xs.sorted()[1], "\(m) \(q)") }
            }
            // Products: one row per shape with the median of its three rounds.
            let shapes = outputs.flatMap { $0.tables["gemm_round"] ?? [] }.filter { $0[0] == m }
            let rows = g.rows.filter { $0[0] == m }
            #expect(shapes.count == 3 * rows.count)
            var total = 0.0, exact = 0.0
            for r in rows {
                let xs = shapes.filter { Array($0[3...9]) == Array(r[1...7]) }.map { Double($0[10])! }.sorted()
                #expect(xs.count == 3 && Double(r[8])! == xs[1])
                total += Double(r[6])! * xs[1]
                exact += Double(r[7])! * xs[1]
            }
            #expect(abs(numbers(t, "gemm_s_grad")[i] - total) <= 1e-15 * total)
            #expect(abs(numbers(t, "gemm_s_exact")[i] - exact) <= 1e-15 * exact)
        }
        // Without `blas` nothing runs through BLAS: the exact HVP's work is all dual arithmetic
        // (other FLOPs 3F, its FLOPs; no products).
        #expect(numbers(t, "gemm_s_exact").allSatisfy { $0 == 0 } && numbers(t, "flops_gemm_exact").allSatisfy { $0 == 0 })
        let pe = table(out, "predictions").rows.filter { $0[4] == "time_hvp_exact_s" }
        #expect(pe.count == 3 && pe.allSatisfy { Double($0[7])! == Double($0[5])! && Double($0[5])! > 0 && Double($0[6])! == 0 })
        #expect(numbers(t, "hvp_over_grad_central")[1] == numbers(t, "time_hvp_central_s")[1] / numbers(t, "time_grad_s")[1])
        #expect(g.rows.filter { $0[0] == "mlp:widths=64-64-8,samples=8" }.count > 0)
        // The target's times come from the held-out-checked cost model, as with one round.
        let e = table(out, "extrapolation")
        #expect(e.rows.filter { $0[0] == "mlp:widths=64-64-8,samples=8" && $0[9] == "s" }.count == 3)
    }

    /// The Lanczos phase's memory model by hand: basis and w 4·1000·11, the operator's fp64
    /// input 8000, then the larger FD moment: the quotient 1000·(4·4 + 8) = 24000, or the
    /// second gradient 3·4·1000 + 4·(activations − 1000).
    @Test func lanczosMemoryModelByHand() {
        #expect(MemoryModel(n: 1000, shards: 1, computeBytes: 4, krylovBytes: 4, activations: 3000).harnessLanczosBytes(steps: 10) == 76_000)
        #expect(MemoryModel(n: 1000, shards: 1, computeBytes: 4, krylovBytes: 4, activations: 10_000).harnessLanczosBytes(steps: 10) == 100_000)
        #expect(MemoryModel(n: 1000, shards: 2, computeBytes: 4, krylovBytes: 4, activations: 3000).harnessLanczosBytes(steps: 10) == 76_000 + 2 * 1000 * 24)
    }

    @Test func storageBytesOfFormats() {
        #expect(["e4m3", "e5m2", "bf16", "fp16", "tf32", "fp32", "fp64", "mpfr256"].map(MemoryModel.storageBytes) == [1, 1, 2, 2, 4, 4, 8, 48])
        #expect(MemoryModel.storageBytes("p=8,emin=-126,emax=127") == 2)
        #expect(MemoryModel.storageBytes("p=4,emin=-6,emax=8") == 1)
    }
}

/// Table cells do not carry the sign of a NaN: IEEE 754 arithmetic does not define
/// which operand's NaN a sum returns, and an optimizer may swap operands, so the sign
/// differed between two builds of the same code (recommend-check's grid.csv).
@Suite struct CellTests {
    @Test func nanHasNoSign() {
        #expect(cell(-Double.nan) == "nan" && cell(Double.nan) == "nan" && cell(-Double.signalingNaN) == "nan")
        #expect(cell(-0.0) == "-0.0" && cell(-.infinity) == "-inf" && cell(0.1) == "0.1" && cell(nil) == "")
    }
}
