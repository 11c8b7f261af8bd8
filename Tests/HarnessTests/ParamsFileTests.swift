import Foundation
import Testing
import Models
import Curvature
import LinearAlgebra
import Scalars
@testable import Harness

/// `params=FILE.npy` in a built-in model's spec: the user's parameters, recorded with
/// their SHA-256, and user data's provenance.
@Suite struct ParamsFileTests {
    func json(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }
    func array(_ url: URL) throws -> [Double] { try DataFiles.readNPY(url.path).0 }
    func sha256sum(_ path: String) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sha256sum") else { return nil }
        let p = Process(), pipe = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum"); p.arguments = [path]; p.standardOutput = pipe
        try p.run(); p.waitUntilExit()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ").first.map(String.init)
    }

    /// hvp's own params.npy given back reproduces its run bit for bit; other parameters
    /// give the closed-form HVP of expsum at them (w·exp(θ)·v), and the files are named
    /// with their SHA-256 in model.json and the manifest.
    @Test func userParametersAreUsedAndRecorded() throws {
        let a = tempDir("params-a"), b = tempDir("params-b"), c = tempDir("params-c")
        defer { for d in [a, b, c] { try? FileManager.default.removeItem(at: d) } }
        let pol = ["--policy", "param=fp32,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp64", "--eps", "1e-4", "--seed", "3"]
        var r = try runCLI(["hvp", "--model", "mlp:widths=3-5-2,samples=6"] + pol + ["--out", a.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let given = a.appendingPathComponent("params.npy").path
        r = try runCLI(["hvp", "--model", "mlp:widths=3-5-2,samples=6,params=\(given)"] + pol + ["--out", b.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        for f in ["params.npy", "hv.npy", "hv_exact.npy", "x.npy"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(f)) == Data(contentsOf: b.appendingPathComponent(f)), "\(f)")
        }
        let mb = try json(b.appendingPathComponent("model.json"))
        let sha = try sha256sum(given) ?? SHA256.hex(Data(contentsOf: URL(fileURLWithPath: given)))
        #expect(mb["parameters_source"] as? String == "user parameters from \(given) (sha256 \(sha))")
        #expect((mb["input_files"] as? [[String: String]]) == [["path": given, "sha256": sha]])
        #expect((try json(a.appendingPathComponent("model.json")))["parameters_source"] as? String == "seeded initialization (seed 3)")
        let manifest = try json(b.appendingPathComponent("manifest.json"))
        #expect((manifest["input_files"] as? [String: String]) == [given: sha])
        #expect((try json(a.appendingPathComponent("manifest.json")))["input_files"] == nil)

        // expsum at θ_i = (i − 2)/4: Hv = w ⊙ exp(θ) ⊙ v exactly in closed form.
        let theta = (0..<5).map { (Double($0) - 2) / 4 }
        let file = c.appendingPathComponent("theta.npy")
        try FileManager.default.createDirectory(at: c, withIntermediateDirectories: true)
        try NPY.float64(theta).write(to: file)
        let out = c.appendingPathComponent("run")
        r = try runCLI(["hvp", "--model", "expsum:n=5,params=\(file.path)", "--policy", "param=fp64,compute=fp64,grad=fp64,hvp=fp64",
                        "--eps", "1e-5", "--out", out.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let w = try array(out.appendingPathComponent("w.npy")), v = try array(out.appendingPathComponent("v.npy"))
        let hv = try array(out.appendingPathComponent("hv_exact.npy"))
        #expect(try array(out.appendingPathComponent("params.npy")) == theta)
        for i in 0..<5 { #expect(abs(hv[i] - w[i] * Foundation.exp(theta[i]) * v[i]) <= 1e-15 * abs(hv[i]), "\(i)") }
    }

    /// Training starts from the given parameters.
    @Test func trainingStartsFromTheFile() throws {
        let d = tempDir("params-train")
        defer { try? FileManager.default.removeItem(at: d) }
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        let file = d.appendingPathComponent("zero.npy")
        try NPY.float64([Double](repeating: 0, count: 3 * 2 + 2)).write(to: file)
        let out = d.appendingPathComponent("run")
        let r = try runCLI(["hvp", "--model", "softmax:d=3,classes=2,samples=8,params=\(file.path),train=5,optimizer=sgd",
                            "--policy", "param=fp64,compute=fp64,grad=fp64,hvp=fp64", "--eps", "1e-4", "--out", out.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let m = try json(out.appendingPathComponent("model.json"))
        #expect((m["parameters_source"] as? String)?.hasSuffix(", then trained (sgd, 5 steps, lr 0.1)") == true)
        // At θ = 0 a two-class softmax predicts ½ for each sample: the loss is log 2 exactly.
        let initial = try #require((m["training"] as? [String: Any])?["loss_initial"] as? Double)
        #expect(abs(initial - Foundation.log(2.0)) < 1e-15)
    }

    /// User data is named as such, with its files' SHA-256.
    @Test func userDataProvenance() throws {
        let d = tempDir("params-data")
        defer { try? FileManager.default.removeItem(at: d) }
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        let x = d.appendingPathComponent("x.npy"), y = d.appendingPathComponent("y.npy")
        try NPY.float64([0.5, -1, 2, 0.25, 1, 1], shape: [3, 2]).write(to: x)
        try NPY.int64([0, 1, 1]).write(to: y)
        let out = d.appendingPathComponent("run")
        let r = try runCLI(["hvp", "--model", "softmax:d=2,classes=2,x=\(x.path),y=\(y.path)", "--eps", "1e-3", "--out", out.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let m = try json(out.appendingPathComponent("model.json"))
        let data = try #require(m["data"] as? [String: Any])
        #expect(data["provenance"] as? String == "user data" && data["source"] as? String == "user data: x=\(x.path), y=\(y.path)")
        #expect(Set((m["input_files"] as? [[String: String]] ?? []).compactMap { $0["path"] }) == [x.path, y.path])
        let builtin = d.appendingPathComponent("builtin")
        _ = try runCLI(["hvp", "--model", "softmax:d=2,classes=2", "--eps", "1e-3", "--out", builtin.path])
        #expect(((try json(builtin.appendingPathComponent("model.json")))["data"] as? [String: Any])?["provenance"] as? String == "built-in")
    }

    @Test func badParameterFiles() throws {
        let d = tempDir("params-bad")
        defer { try? FileManager.default.removeItem(at: d) }
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        let short = d.appendingPathComponent("short.npy"), nan = d.appendingPathComponent("nan.npy"), twoD = d.appendingPathComponent("2d.npy")
        try NPY.float64([1, 2, 3]).write(to: short)
        try NPY.float64([0, 0, 0, 0, .nan, 0, 0, 0]).write(to: nan)
        try NPY.float64([Double](repeating: 0, count: 8), shape: [2, 4]).write(to: twoD)
        for (file, message) in [(short.path, "must have shape (8,)"), (nan.path, "parameter 4 (layer0.weight) is nan"), (twoD.path, "got [2, 4]"),
                                ("/nonexistent.npy", "/nonexistent.npy"), ("", "params= needs a .npy file")] {
            let out = d.appendingPathComponent("out")
            let r = try runCLI(["hvp", "--model", "softmax:d=3,classes=2,params=\(file)", "--eps", "1e-3", "--out", out.path])
            #expect(r.status == 2 && r.stderr.contains(message), "\(file): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
        let r = try runCLI(["hvp", "--model", "softmax:d=3,classes=2,params=\(short.path),params=\(short.path)", "--eps", "1e-3", "--out", d.appendingPathComponent("o2").path])
        #expect(r.status == 2 && r.stderr.contains("'params' appears twice"))
    }
}

/// float16 .npy files (parameters exported from a half-precision model) decode exactly.
@Suite struct NPYFloat16Tests {
    /// Every binary16 encoding against the standard library's Float16 (an independent decoder).
    @Test func everyEncodingDecodesExactly() throws {
        var bytes = [UInt8](NPY.float64([0]).prefix(10))            // magic, version, header length
        let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (65536,), }"
        let padded = header + String(repeating: " ", count: (64 - (10 + header.count + 1) % 64) % 64) + "\n"
        bytes[8] = UInt8(padded.utf8.count & 0xff); bytes[9] = UInt8(padded.utf8.count >> 8)
        bytes += Array(padded.utf8)
        for b in 0...UInt16.max { bytes += [UInt8(b & 0xff), UInt8(b >> 8)] }
        let (values, shape) = try DataFiles.readNPY(data: Data(bytes), path: "f16.npy")
        #expect(shape == [65536])
        var mismatches = 0
        for b in 0...UInt16.max {
            let want = Double(Float16(bitPattern: b)), got = values[Int(b)]
            if !(want == got && want.sign == got.sign || want.isNaN && got.isNaN) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
}

/// `--params PATTERN`: the Hessian of some tensors, the others held fixed.
@Suite struct ParameterSubsetTests {
    static let spec = "mlp:widths=3-4-2,samples=6"
    /// Tensors at offsets 0..<12 and 24..<26 of the 26 parameters: not contiguous.
    static let pattern = "layer0.weight,layer1.b*"
    static let indices = Array(0..<12) + [24, 25]

    /// The subset's gradient is the full gradient's entries, and its dense Hessian (from
    /// its own exact HVPs) is the principal block H_SS of the full model's, bit for bit.
    @Test func subsetIsThePrincipalBlock() throws {
        let full = try ModelSpec.build(Self.spec, seed: 5)
        func check<M: DifferentiableModel>(_ m: M) throws {
            let sub = try ParameterSubset(base: m, pattern: Self.pattern, seed: 5, round: { $0 })
            #expect(sub.parameterCount == 14 && sub.tensorNames == ["layer0.weight", "layer1.bias"])
            let theta = m.initialParameters(seed: 5)
            #expect(sub.initialParameters(seed: 5) == Self.indices.map { theta[$0] })
            let gFull = m.lossAndGradient(theta, accumulation: .recursive).gradient
            let gSub = sub.lossAndGradient(sub.initialParameters(seed: 5), accumulation: .recursive).gradient
            #expect(gSub == Self.indices.map { gFull[$0] })
            let hFull = FullHessian.compute(m, theta: theta).hessian
            let hSub = FullHessian.compute(sub, theta: sub.initialParameters(seed: 5)).hessian
            for (a, i) in Self.indices.enumerated() { for (b, j) in Self.indices.enumerated() {
                #expect(hSub[a, b] == hFull[i, j], "H_SS[\(a), \(b)]")
            } }
            // Fixed parameters are rounded once by the policy's param rounding.
            let bf = try ParameterSubset(base: m, pattern: "layer1.weight", seed: 5, round: { Double(Float($0)) })
            #expect(bf.fixed.allSatisfy { Double(Float($0)) == $0 } && bf.fixed != theta)
        }
        try check(full as! MLP)
    }

    /// slq --params: spectrum.csv is the spectrum of H_SS (eigenvalues of the block of the
    /// full model's dense Hessian, computed here), model.json and params_full.npy say what was held fixed.
    @Test func slqAndHVPOnASubset() throws {
        let d = tempDir("subset")
        defer { try? FileManager.default.removeItem(at: d) }
        let pol = "param=fp64,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp64,krylov=fp64"
        let r = try runCLI(["slq", "--model", Self.spec, "--params", Self.pattern, "--policy", pol, "--eps", "1e-4", "--steps", "14",
                            "--probes", "2", "--reorth", "full", "--seed", "5", "--out", d.appendingPathComponent("slq").path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let got = try CSVTable.read(path: d.appendingPathComponent("slq/spectrum.csv").path).map { Double($0["eigenvalue"]!)! }
        let m = try ModelSpec.build(Self.spec, seed: 5) as! MLP
        let h = FullHessian.compute(m, theta: m.initialParameters(seed: 5)).hessian
        var block = Matrix<Double>(rows: 14, cols: 14)
        for (a, i) in Self.indices.enumerated() { for (b, j) in Self.indices.enumerated() { block[a, b] = 0.5 * (h[i, j] + h[j, i]) } }
        let want = try SymmetricEigen.decompose(block, vectors: false).values.sorted()
        #expect(got.count == 14)
        let scale = want.map(abs).max()!
        for (x, y) in zip(got, want) { #expect(abs(x - y) <= 1e-12 * scale, "\(x) vs \(y)") }

        let hv = d.appendingPathComponent("hvp")
        let r2 = try runCLI(["hvp", "--model", Self.spec, "--params", Self.pattern, "--policy", "param=bf16,compute=fp32,grad=fp32",
                             "--eps", "1e-2", "--seed", "5", "--out", hv.path])
        #expect(r2.status == 0, Comment(rawValue: r2.stderr))
        let model = try JSONSerialization.jsonObject(with: Data(contentsOf: hv.appendingPathComponent("model.json"))) as! [String: Any]
        let sub = try #require(model["parameter_subset"] as? [String: Any])
        #expect(sub["full_parameter_count"] as? Int == 26 && sub["tensors"] as? [String] == ["layer0.weight", "layer1.bias"])
        #expect((model["layout"] as? [[String: Any]])?.map { $0["offset"] as! Int } == [0, 12])
        let fixed = try DataFiles.readNPY(hv.appendingPathComponent("params_full.npy").path).0
        #expect(fixed.count == 26 && fixed.allSatisfy { Double(BFloat16(roundingDouble: $0)) == $0 }, "held fixed in the param format (bf16)")
        #expect(try DataFiles.readNPY(hv.appendingPathComponent("hv.npy").path).1 == [14])
    }

    /// A spec's `subset=` (globs joined by '|') is `--params` for experiment files: `hvp`
    /// gives the same bytes either way (fixed values rounded into the param format, bf16
    /// here), an fd-bias sweep over the subset spec measures the same rel_err as `hvp`
    /// against the same mpfr256 reference, and giving both is refused.
    @Test func subsetInASpecIsParams() throws {
        let d = tempDir("subset-spec")
        defer { try? FileManager.default.removeItem(at: d) }
        let pol = "param=bf16,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"
        let inSpec = Self.spec + ",subset=" + Self.pattern.replacingOccurrences(of: ",", with: "|")
        func hvp(_ model: String, _ extra: [String], _ name: String) throws -> URL {
            let out = d.appendingPathComponent(name)
            let r = try runCLI(["hvp", "--model", model] + extra + ["--policy", pol, "--eps", "1e-2", "--seed", "5", "--out", out.path])
            #expect(r.status == 0, Comment(rawValue: r.stderr))
            return out
        }
        let a = try hvp(Self.spec, ["--params", Self.pattern], "a"), b = try hvp(inSpec, [], "b")
        for f in ["hv.npy", "hv_exact.npy", "params.npy", "params_full.npy"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(f)) == Data(contentsOf: b.appendingPathComponent(f)), "\(f)")
        }
        let both = try runCLI(["hvp", "--model", inSpec, "--params", "layer0.*", "--eps", "1e-2", "--out", d.appendingPathComponent("c").path])
        #expect(both.status == 2 && both.stderr.contains("already selects a subset"), Comment(rawValue: both.stderr))
        let bad = try runCLI(["hvp", "--model", Self.spec + ",subset=zzz*", "--eps", "1e-2", "--out", d.appendingPathComponent("e").path])
        #expect(bad.status == 2 && bad.stderr.contains("subset=zzz*") && bad.stderr.contains("matches no tensor"), Comment(rawValue: bad.stderr))

        let (edir, file) = try experiment("subset-fd", """
        study: fd-bias
        models: ["\(inSpec)"]
        policies: ["\(pol)"]
        schemes: [central]
        eps: [1.0e-2]
        seeds: [5]

        """)
        defer { try? FileManager.default.removeItem(at: edir) }
        let out = edir.appendingPathComponent("out")
        let r = try runCLI(["run", file, "--out", out.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let row = try #require(try CSVTable.read(path: out.appendingPathComponent("points.csv").path).first)
        let summary = try #require(try CSVTable.read(path: b.appendingPathComponent("summary.csv").path).first)
        let (x, y) = (try #require(Double(row["rel_err"]!)), try #require(Double(summary["rel_err"]!)))
        #expect(x > 0 && abs(x - y) <= 1e-12 * y, "fd-bias \(x) vs hvp \(y)")
    }

    @Test func badPatterns() throws {
        for (pattern, message) in [("nope*", "matches no tensor name or block"), ("layer0.weight,", "an empty pattern"),
                                   ("layer0.*,zzz", "'zzz' matches no tensor")] {
            let out = tempDir("subset-bad")
            let r = try runCLI(["hvp", "--model", Self.spec, "--params", pattern, "--eps", "1e-3", "--out", out.path])
            #expect(r.status == 2 && r.stderr.contains(message) && !FileManager.default.fileExists(atPath: out.path), "\(pattern): \(r.stderr)")
        }
    }
}
