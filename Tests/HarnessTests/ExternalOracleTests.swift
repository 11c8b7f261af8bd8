import Testing
import Foundation
@testable import Harness
@testable import Models

/// `external:CMD` (docs/ORACLE.md): the NumPy example against the harness's own MLP,
/// and oracles that crash, hang, lie or speak another protocol.
@Suite(.serialized) struct ExternalOracleTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let numpyOracle = repo.appendingPathComponent("examples/oracle_numpy.py").path
    static let fp64 = "param=fp64,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp64"

    static func temp(_ name: String) -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("hh-oracle-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: u)
        return u
    }

    static func npy(_ dir: URL, _ name: String) throws -> [Double] { try DataFiles.readNPY(dir.appendingPathComponent(name).path).0 }

    static func relDiff(_ a: [Double], _ b: [Double]) -> Double {
        let d = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        return d / a.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }

    static func summary(_ dir: URL) throws -> [String: String] {
        try CSVTable.read(path: dir.appendingPathComponent("summary.csv").path)[0]
    }

    /// The NumPy oracle serving the harness's own MLP (exported by `hvp`): its
    /// hand-written fp64 exact HVP equals the harness's forward-over-reverse one to
    /// rounding, and the FD-HVP through the protocol equals the built-in one to the
    /// rounding of the two gradients divided by ε.
    @Test(arguments: ["tanh,loss=ce", "gelu,loss=mse", "relu,loss=ce"])
    func numpyOracleMatchesTheBuiltInMLP(variant: String) throws {
        let a = Self.temp("a"), b = Self.temp("b")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let common = ["--seed", "4", "--policy", Self.fp64, "--reference", "fp64", "--eps", "1e-3", "--scheme", "central"]
        let r1 = try runCLI(["hvp", "--model", "mlp:widths=5-7-3,samples=20,act=\(variant)", "--out", a.path] + common)
        #expect(r1.status == 0, "\(r1.stderr)")
        let r2 = try runCLI(["hvp", "--model", "external:python3 \(Self.numpyOracle) --from \(a.path)", "--out", b.path] + common)
        #expect(r2.status == 0, "\(r2.stderr)")
        try #require(r1.status == 0 && r2.status == 0)
        #expect(try Self.npy(a, "params.npy") == Self.npy(b, "params.npy"), "θ crosses the protocol exactly")
        let exactDiff = Self.relDiff(try Self.npy(a, "hv_exact.npy"), try Self.npy(b, "hv_exact.npy"))
        #expect(exactDiff < 1e-13, "NumPy's R-operator HVP vs the harness's dual-number HVP: \(exactDiff)")
        let fdDiff = Self.relDiff(try Self.npy(a, "hv.npy"), try Self.npy(b, "hv.npy"))
        #expect(fdDiff < 1e-10 && fdDiff > 0, "FD-HVPs through two gradient implementations: \(fdDiff)")
        let ea = Double(try Self.summary(a)["rel_err"]!)!, eb = Double(try Self.summary(b)["rel_err"]!)!
        #expect(abs(ea - eb) < 1e-9 * max(1, ea) && ea > 1e-9, "rel_err \(ea) vs \(eb)")
        let model = try String(contentsOf: b.appendingPathComponent("model.json"), encoding: .utf8)
        #expect(model.contains("\"type\" : \"external\"") && model.contains("oracle_numpy.py MLP 5-7-3") && model.contains("layer1.bias"))
    }

    /// recommend and slq --eps auto through the oracle: SLQ's extreme Ritz values are
    /// those of the same model run inside the harness, and the step's predicted error
    /// is within 3× of the error measured against the oracle's exact HVP.
    @Test func recommendAndSLQThroughTheOracle() throws {
        let a = Self.temp("ma"), s1 = Self.temp("s1"), s2 = Self.temp("s2"), rec = Self.temp("rec")
        defer { for u in [a, s1, s2, rec] { try? FileManager.default.removeItem(at: u) } }
        let spec = "mlp:widths=6-8-4,samples=30"
        #expect(try runCLI(["hvp", "--model", spec, "--policy", Self.fp64, "--reference", "none", "--out", a.path]).status == 0)
        let external = "external:python3 \(Self.numpyOracle) --from \(a.path)"
        let slq = ["slq", "--policy", Self.fp64 + ",krylov=fp64", "--eps", "1e-4", "--steps", "25", "--probes", "2", "--reorth", "full"]
        let r1 = try runCLI(slq + ["--model", spec, "--out", s1.path])
        let r2 = try runCLI(slq + ["--model", external, "--out", s2.path])
        #expect(r1.status == 0 && r2.status == 0, "\(r1.stderr) \(r2.stderr)")
        let t1 = try Self.summary(s1), t2 = try Self.summary(s2)
        for key in ["lambda_min", "lambda_max"] {
            let x = Double(t1[key]!)!, y = Double(t2[key]!)!
            #expect(abs(x - y) <= 1e-8 * abs(x), "\(key): built-in \(x), oracle \(y)")
        }
        #expect(t2["exact_spectrum"] == "yes", "the dense Hessian from the oracle's exact HVPs")
        // The README's flow ends in a report of the oracle's SLQ run: density against the exact
        // spectrum, Ritz values with residuals, orthogonality per step.
        let rep = Self.temp("rep")
        defer { try? FileManager.default.removeItem(at: rep) }
        let r4 = try runCLI(["report", s2.path, "--out", rep.path])
        #expect(r4.status == 0, "\(r4.stderr)")
        let html = (try? String(contentsOf: rep.appendingPathComponent("report.html"), encoding: .utf8)) ?? ""
        #expect(occurrences(html, "<svg ") == 3 && html.contains("exact eigenvalues</text>") && html.contains("model external:python3"))
        let r3 = try runCLI(["recommend", "--model", "external:python3 \(Self.numpyOracle) --dtype float32", "--policy",
                             "param=fp32,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp64", "--scheme", "central", "--reference", "fp64", "--out", rec.path])
        #expect(r3.status == 0, "\(r3.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: rec.appendingPathComponent("recommend.json"))) as? [String: Any]
        let predicted = json?["predicted_err"] as? Double, measured = json?["measured_err"] as? Double
        #expect(predicted != nil && measured != nil && predicted! / measured! < 3 && measured! / predicted! < 3,
                "predicted \(predicted ?? .nan), measured \(measured ?? .nan)")
    }

    // MARK: hostile oracles

    /// A stdlib-only oracle of ½Σ aᵢθᵢ² (a = 1, 2, 3), misbehaving as `MODE` asks.
    static let fake = """
    import json, struct, sys, time, os
    mode = sys.argv[1]
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    def line(d): out.write(json.dumps(d).encode() + b"\\n"); out.flush()
    if mode == "hang-hello": time.sleep(60)
    if mode == "noise": print("loading weights..."); sys.stdout.flush()
    hello = {"protocol": "hessian-harness-oracle", "version": 2 if mode == "version" else 1, "parameters": 3, "hvp": mode != "nohvp"}
    if mode == "layout": hello["layout"] = [{"name": "w", "shape": [2]}]
    if mode == "notjson": out.write(b"hello there\\n"); out.flush()
    else: line(hello)
    a = [1.0, 2.0, 3.0]
    while True:
        l = inp.readline()
        if not l: sys.exit(0)
        req = json.loads(l); n = req.get("values", 0)
        x = struct.unpack("<%dd" % n, inp.read(8 * n)) if n else ()
        op = req["op"]
        if op == "bye": sys.exit(0)
        if op == "parameters": vals = [0.5, -1.0, 2.0]; extra = {}
        else:
            if mode == "crash": sys.exit(3)
            if mode == "kill": os.kill(os.getpid(), 9)
            if mode == "hang": time.sleep(60)
            if mode == "error": line({"ok": False, "error": "boom"}); continue
            th = x[:3]
            g = [ai * t for ai, t in zip(a, th)]
            vals = g + ([ai * v for ai, v in zip(a, x[3:])] if op == "hvp" else [])
            if mode == "nan": vals[1] = float("nan")
            if mode == "count": vals = vals[:-1]
            extra = {"loss": 0.5 * sum(ai * t * t for ai, t in zip(a, th))}
        line(dict(ok=True, values=len(vals), **extra)); out.write(struct.pack("<%dd" % len(vals), *vals)); out.flush()
    """

    static func fakeOracle() throws -> String {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("hh-fake-oracle-\(getpid()).py")
        try Self.fake.write(to: u, atomically: true, encoding: .utf8)
        return u.path
    }

    @Test func aWellBehavedOracleGivesTheExactQuadratic() throws {
        let out = Self.temp("good")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try runCLI(["hvp", "--model", "external:python3 \(try Self.fakeOracle()) good", "--policy", Self.fp64, "--reference", "fp64",
                            "--eps", "0.25", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try Self.npy(out, "v.npy"), hv = try Self.npy(out, "hv.npy"), exact = try Self.npy(out, "hv_exact.npy")
        #expect(exact == zip([1.0, 2, 3], v).map { $0 * $1 }, "the oracle's exact HVP arrives bit for bit")
        #expect(Self.relDiff(exact, hv) < 1e-14, "central differences are exact on a quadratic up to rounding")
        #expect(try Self.npy(out, "params.npy") == [0.5, -1, 2])
    }

    @Test(arguments: [
        ("crash", "it exited with status 3"),
        ("kill", "it was killed by signal 9"),
        ("hang", "did not send its reply to the gradient request within 1 s"),
        ("hang-hello", "did not send its handshake within 1 s"),
        ("count", "carries 2 values; 3 were expected"),
        ("nan", "holds nan at element 1"),
        ("version", "speaks protocol version 2; this harness speaks version 1"),
        ("notjson", "its handshake is not a JSON object: 'hello there'"),
        ("noise", "its handshake is not a JSON object: 'loading weights...'"),
        ("error", "reported an error for the gradient request: boom"),
        ("layout", "layout tensors hold 2 values but the handshake says 3 parameters"),
    ])
    func aMisbehavingOracleIsOneClearErrorAndNothingWritten(mode: String, expected: String) throws {
        let out = Self.temp("bad-\(mode)")
        defer { try? FileManager.default.removeItem(at: out) }
        let clock = ContinuousClock(), start = clock.now
        let r = try runCLI(["hvp", "--model", "external:python3 \(try Self.fakeOracle()) \(mode)", "--policy", Self.fp64, "--reference", "none",
                            "--oracle-timeout", "1", "--out", out.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains(expected), "\(mode): \(r.stderr)")
        #expect(r.stderr.contains("external oracle 'python3 "))
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path), "nothing written")
        #expect(clock.now - start < .seconds(20), "a hung oracle is killed at its timeout")
    }

    @Test func referencesTheOracleCannotGiveAreRefused() throws {
        let fake = try Self.fakeOracle()
        let out = Self.temp("ref")
        defer { try? FileManager.default.removeItem(at: out) }
        let mp = try runCLI(["hvp", "--model", "external:python3 \(fake) good", "--out", out.path])
        #expect(mp.status == 2 && mp.stderr.contains("use --reference fp64 (or none), not mpfr256"), "\(mp.stderr)")
        let none = try runCLI(["hvp", "--model", "external:python3 \(fake) nohvp", "--reference", "fp64", "--out", out.path])
        #expect(none.status == 2 && none.stderr.contains("serves no exact HVP"), "\(none.stderr)")
        let exact = try runCLI(["hvp", "--model", "external:python3 \(fake) nohvp", "--scheme", "exact", "--reference", "none", "--out", out.path])
        #expect(exact.status == 2 && exact.stderr.contains("serves no exact HVP"), "\(exact.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // Without an exact HVP, SLQ still runs; it says why there is no exact spectrum.
        let s = try runCLI(["slq", "--model", "external:python3 \(fake) nohvp", "--policy", Self.fp64 + ",krylov=fp64", "--eps", "1e-3",
                            "--steps", "3", "--probes", "1", "--out", out.path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Self.summary(out)["exact_spectrum"] == "no (the model serves no exact HVP)")
    }

    @Test func startFailuresAndBadOptions() throws {
        let out = Self.temp("start")
        let missing = try runCLI(["hvp", "--model", "external:/nonexistent/oracle", "--reference", "none", "--out", out.path])
        #expect(missing.status == 2 && missing.stderr.contains("closed its output before its handshake: it exited with status 127"), "\(missing.stderr)")
        let empty = try runCLI(["hvp", "--model", "external:", "--reference", "none", "--out", out.path])
        #expect(empty.status == 2 && empty.stderr.contains("needs a command"), "\(empty.stderr)")
        for bad in ["0", "-1", "nan", "x"] {
            let r = try runCLI(["hvp", "--model", "external:true", "--oracle-timeout", bad, "--out", out.path])
            #expect(r.status == 2 && r.stderr.contains("--oracle-timeout needs a number of seconds"), "\(bad): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// The journal of a sweep pins the oracle's script (the command's words that are files).
    @Test func inputFilesOfAnExternalSpecAreTheCommandsFiles() {
        #expect(ModelSpec.inputFiles("external:python3 \(Self.numpyOracle) --from /nonexistent/dir") == [Self.numpyOracle])
    }
}

/// Opt-in (`HH_TORCH_PYTHON=/path/to/python` with torch installed): the PyTorch
/// example oracle (`examples/oracle_torch.py --from DIR`) serving a small *trained*
/// MLP exported by `hvp`. Its float64 exact HVP (torch.func, jvp of grad) matches the
/// harness's `hv_exact.npy`, and SLQ through it matches the harness's own run.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["HH_TORCH_PYTHON"] != nil))
struct TorchOracleTests {
    static var python: String { ProcessInfo.processInfo.environment["HH_TORCH_PYTHON"] ?? "python3" }
    static let script = ExternalOracleTests.repo.appendingPathComponent("examples/oracle_torch.py").path

    @Test(arguments: ["tanh,loss=ce", "gelu,loss=mse"])
    func torchOracleAgreesWithTheHarness(variant: String) throws {
        let a = ExternalOracleTests.temp("ta"), b = ExternalOracleTests.temp("tb"), s1 = ExternalOracleTests.temp("ts1"), s2 = ExternalOracleTests.temp("ts2")
        defer { for u in [a, b, s1, s2] { try? FileManager.default.removeItem(at: u) } }
        let spec = "mlp:widths=6-16-4,samples=64,act=\(variant),train=50"
        let fp64 = ExternalOracleTests.fp64
        let common = ["--seed", "2", "--policy", fp64, "--reference", "fp64", "--eps", "1e-4"]
        let r1 = try runCLI(["hvp", "--model", spec, "--out", a.path] + common)
        try #require(r1.status == 0, "\(r1.stderr)")
        let external = "external:\(Self.python) \(Self.script) --dtype float64 --from \(a.path)"
        let r2 = try runCLI(["hvp", "--model", external, "--out", b.path] + common)
        try #require(r2.status == 0, "\(r2.stderr)")
        let exactDiff = ExternalOracleTests.relDiff(try ExternalOracleTests.npy(a, "hv_exact.npy"), try ExternalOracleTests.npy(b, "hv_exact.npy"))
        #expect(exactDiff < 1e-12, "torch.func's fp64 HVP vs the harness's: \(exactDiff)")
        let fdDiff = ExternalOracleTests.relDiff(try ExternalOracleTests.npy(a, "hv.npy"), try ExternalOracleTests.npy(b, "hv.npy"))
        #expect(fdDiff < 1e-8, "FD-HVPs from autograd and from the harness's reverse pass: \(fdDiff)")
        let slq = ["slq", "--seed", "2", "--policy", fp64 + ",krylov=fp64", "--eps", "1e-4", "--steps", "30", "--probes", "2", "--reorth", "full"]
        let q1 = try runCLI(slq + ["--model", spec, "--out", s1.path]), q2 = try runCLI(slq + ["--model", external, "--out", s2.path])
        try #require(q1.status == 0 && q2.status == 0, "\(q1.stderr) \(q2.stderr)")
        let t1 = try ExternalOracleTests.summary(s1), t2 = try ExternalOracleTests.summary(s2)
        for key in ["lambda_min", "lambda_max"] {
            let x = Double(t1[key]!)!, y = Double(t2[key]!)!
            #expect(abs(x - y) <= 1e-7 * abs(x), "\(key): harness \(x), torch \(y)")
        }
        #expect(abs(Double(t1["w1_scaled"]!)! - Double(t2["w1_scaled"]!)!) < 1e-6)
    }

    /// bfloat16 in PyTorch: recommend picks a step, predicts its error, and the error
    /// measured against the oracle's float64 HVP is within 3× of the prediction.
    @Test func bfloat16ModelGetsAStepWhosePredictionHolds() throws {
        let rec = ExternalOracleTests.temp("trec")
        defer { try? FileManager.default.removeItem(at: rec) }
        let r = try runCLI(["recommend", "--model", "external:\(Self.python) \(Self.script) --dtype bfloat16 --train 200",
                            "--policy", "param=bf16,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp32", "--scheme", "central",
                            "--reference", "fp64", "--out", rec.path])
        try #require(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: rec.appendingPathComponent("recommend.json"))) as? [String: Any]
        let measured = json?["measured_err"] as? Double
        if json?["saturated"] as? Bool == true {
            #expect(measured != nil, "a saturated FD-HVP is reported with its measured error")
        } else {
            let predicted = json?["predicted_err"] as? Double
            #expect(predicted != nil && measured != nil && predicted! / measured! < 3 && measured! / predicted! < 3,
                    "predicted \(predicted ?? .nan), measured \(measured ?? .nan)")
        }
    }
}
