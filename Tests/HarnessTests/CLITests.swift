import Foundation
import Testing
@testable import Harness
import LinearAlgebra
import Scalars

/// Runs the built `hessian-harness` executable (next to the test bundle).
func runCLI(_ args: [String], environment: [String: String?] = [:], in cwd: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("hessian-harness")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if let cwd { p.currentDirectoryURL = cwd }
    if !environment.isEmpty {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs the built executable with its output discarded; its exit status, minor page
/// faults and peak RSS, from `wait4` (this child's own counts, whatever else runs).
func runCLIResources(_ args: [String], environment: [String: String]) throws -> (status: Int32, minorFaults: Int, maxRSSKiB: Int) {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("hessian-harness").path
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    var cArgs: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
    var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for a in cArgs { free(a) }; for e in cEnv { free(e) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var child: pid_t = 0
    let rc = posix_spawn(&child, exe, &actions, nil, &cArgs, &cEnv)
    guard rc == 0 else { throw HarnessError("could not start \(exe): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(child, &status, 0, &usage) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    return (exited ? (status >> 8) & 0xff : -1, usage.ru_minflt, usage.ru_maxrss)
}

@Suite struct CastCommandTests {
    @Test func knownValuesInEveryFormat() throws {
        let out = try CastCommand.run(format: "bf16", rounding: "nearest", seed: 0,
                                      values: ["0.1", "1", "-inf", "0x1.8p-3", "3.4e38", "nan", "1e-40"])
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines == [
            "input,format,rounding,value,bits,abs_error,rel_error",
            "0.1,bf16,nearest,0.1,0x3dcd,9.765625e-05,0.0009765625",
            "1,bf16,nearest,1.0,0x3f80,0.0,0.0",
            "-inf,bf16,nearest,-inf,0xff80,0.0,0.0",
            "0x1.8p-3,bf16,nearest,0.1875,0x3e40,0.0,0.0",
            "3.4e38,bf16,nearest,inf,0x7f80,inf,inf",
            "nan,bf16,nearest,nan,0x7fc0,nan,nan",
            "1e-40,bf16,nearest,9e-41,0x0001,8.164503842008789e-42,0.08164503842008788",
        ])
        // 0.1 in bf16 is 0x3dcd = 0.10009765625: error 9.765625e-05 = 0.1 / 1024 exactly.
        let e4m3 = try CastCommand.run(format: "e4m3", rounding: "nearest", seed: 0, values: ["464", "464.01", "-0.0"])
        #expect(e4m3.contains("464,e4m3,nearest,4.5e+02,0x7e,16.0,") && e4m3.contains("464.01,e4m3,nearest,nan,0x7f")
                && e4m3.contains("-0.0,e4m3,nearest,-0.0,0x80,0.0,0.0"))
        // Negative overflow to NaN keeps the sign bit, as ml_dtypes' float8_e4m3fn does (0xff),
        // both just past the largest finite value and past MPFR's overflow of the p-bit value.
        let neg = try CastCommand.run(format: "e4m3", rounding: "nearest", seed: 0, values: ["-470", "-1e5"])
        #expect(neg.contains("-470,e4m3,nearest,nan,0xff,") && neg.contains("-1e5,e4m3,nearest,nan,0xff,"))
        // RN(0.1) in binary64 lies above 0.1, so `up` gives it and `down` the one below.
        let up = try CastCommand.run(format: "fp64", rounding: "up", seed: 0, values: ["0.1"])
        let down = try CastCommand.run(format: "fp64", rounding: "down", seed: 0, values: ["0.1"])
        #expect(up.contains("0.1,fp64,up,0.1,0x3fb999999999999a,5.551115123125783e-18,"))
        #expect(down.contains("0.1,fp64,down,0.09999999999999999,0x3fb9999999999999,"))
        let tf32 = try CastCommand.run(format: "tf32", rounding: "toward-zero", seed: 0, values: ["1.00048828125"])
        #expect(tf32.contains(",0x1fc00,"), "19-bit encoding, 5 hex digits")
        let mp = try CastCommand.run(format: "mpfr128", rounding: "nearest", seed: 0, values: ["0.333"])
        #expect(mp.contains("0.333,mpfr128,nearest,0.3330000000000000000000000000000000000004,,4.4668785331246924e-40,"), "40 digits round-trip 128 bits")
    }

    @Test func userFormatsAndStochasticSeed() throws {
        let a = try CastCommand.run(format: "p=3,emin=-2,emax=3,infinities=no,overflow=saturate", rounding: "nearest", seed: 0, values: ["100"])
        #expect(a.contains("\"p=3,emin=-2,emax=3,infinities=no,overflow=saturate\",nearest,1.2e+01,0x1a,88.0,"), Comment(rawValue: a))
        let s1 = try CastCommand.run(format: "bf16", rounding: "stochastic", seed: 7, values: Array(repeating: "0.1", count: 20))
        let s2 = try CastCommand.run(format: "bf16", rounding: "stochastic", seed: 7, values: Array(repeating: "0.1", count: 20))
        #expect(s1 == s2 && s1.contains("0x3dcd") && s1.contains("0x3dcc"))
    }

    /// Inputs beyond MPFR's default exponent range (about 1e±323228496): the value
    /// rounds as the format says and the error columns are the true errors (they were
    /// 0.0 when the exact input itself under- or overflowed to 0 or ∞).
    @Test func errorsBeyondMPFRsDefaultRange() throws {
        func rows(_ f: String, _ mode: String, _ vs: [String]) throws -> [[String]] {
            try CastCommand.run(format: f, rounding: mode, seed: 0, values: vs).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }
        let vs = ["1e-99999999999", "1e99999999999", "-1e99999999999", "2e-9999999999999999999999999", "1e9999999999999999999999"]
        for f in ["bf16", "mpfr64"] {
            let near = try rows(f, "nearest", vs)
            #expect(near[0][3] == "0.0" && near[0][6] == "1.0", "\(f) \(near[0])")          // 0 against a nonzero input
            #expect(near[1][3] == "inf" && near[1][5] == "inf" && near[1][6] == "inf", "\(f) \(near[1])")
            #expect(near[2][3] == "-inf" && near[2][6] == "inf")
            #expect(near[3][3] == "0.0" && near[3][6] == "1.0", "beyond even the widest range: \(near[3])")
            #expect(near[4][3] == "inf" && near[4][6] == "inf")
            let tz = try rows(f, "toward-zero", vs)
            #expect(tz[1][5] == "inf" && tz[1][6] == "1.0", "greatest finite against a huge input: \(tz[1])")
            let up = try rows(f, "up", vs)
            #expect(up[0][3] != "0.0" && up[0][6] == "inf", "smallest positive against a tiny input: \(up[0])")
        }
        // Inside the default range nothing changed: mpfr64 of 1e-400 is a normal number.
        let r = try rows("mpfr64", "nearest", ["1e-400"])[0]
        #expect(Double(r[6])! < 1e-19)
    }

    /// 20,000 values on the command line: the values bypass ArgumentParser, which
    /// removes each consumed positional argument from an array (quadratic: 18 s in a
    /// release build, 99 s in debug; now 0.6 s in debug). The bound is a hang guard, not a benchmark.
    @Test func manyValuesAreLinear() throws {
        let values = (0..<20_000).map { "\(Double($0) * 0.001)" }
        let start = Date()
        let r = try runCLI(["cast", "--format", "bf16"] + values.prefix(10_000) + ["--rounding", "up", "--"] + values.suffix(10_000))
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        #expect(Date().timeIntervalSince(start) < 30)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 20_001 && lines[1] == "0.0,bf16,up,0.0,0x0000,0.0,0.0" && lines[20_000].hasPrefix("19.999,bf16,up,20.0,"))
        // Values and options mix as before: values anywhere, '-' values before '--', options in any order.
        let m = try runCLI(["cast", "1", "--format", "bf16", "-470", "--seed=3", "2"])
        #expect(m.stdout.split(separator: "\n").map { $0.split(separator: ",")[0] } == ["input", "1", "-470", "2"], Comment(rawValue: m.stderr))
        let bad = try runCLI(["cast", "--formt", "bf16", "2"])
        #expect(bad.status == 2 && bad.stdout.isEmpty)
    }

    @Test func badInputExitsTwoWithNothingOnStdout() throws {
        for args in [["cast", "--format", "bf17", "1"], ["cast", "--format", "bf16", "--rounding", "sideways", "1"],
                     ["cast", "--format", "bf16", "1", "one"], ["cast", "--format", "bf16", "1.2.3"],
                     ["cast", "--format", "p=1,emin=0,emax=3", "1"], ["cast", "--format", "bf16"]] {
            let r = try runCLI(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stdout.isEmpty, "\(args): \(r.stdout)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        let ok = try runCLI(["cast", "--format", "bf16", "-1.5", "-inf"])
        #expect(ok.status == 0 && ok.stdout.contains("-1.5,bf16,nearest,-1.5,0xbfc0"))
        // `--` ends the options and is not a value (issue 20, item 6).
        let dashed = try runCLI(["cast", "--format", "bf16", "--", "-1.5", "-inf"])
        #expect(dashed.status == 0 && dashed.stdout == ok.stdout, "\(dashed.stdout) \(dashed.stderr)")
    }

    @Test func formatsListsEveryFormat() throws {
        let r = try runCLI(["formats", "--csv"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first == "name,p,emin,emax,u,smallest_subnormal,largest_finite,subnormals,infinities,nan,bits")
        for name in ["bf16", "fp16", "tf32", "fp32", "fp64", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1", "mpfr256"] {
            #expect(lines.contains { $0.hasPrefix(name + ",") }, "\(name)")
        }
        #expect(lines.contains("bf16,8,-126,127,0.00390625,9.183549615799121e-41,3.3895313892515355e+38,yes,yes,yes,16"))
        #expect(lines.contains("e4m3,4,-6,8,0.0625,0.001953125,448.0,yes,no,yes,8"))
        #expect(lines.contains("e3m2,3,-2,4,0.125,0.0625,28.0,yes,no,no,6"))
        let table = try runCLI(["formats"])
        #expect(table.status == 0 && table.stdout.contains("mpfr4096"))
    }
}

/// The executable runs OpenBLAS's kernels for this CPU's level, whatever OpenBLAS
/// detected (Debian 12's takes Sapphire Rapids for a Prescott), unless the user chose.
@Suite struct BLASKernelSelectionTests {
    @Test func executableUsesTheCPUsKernelsAndRecordsThem() throws {
        let run = try runCLI(["version"])
        #expect(run.status == 0)
        let inProcess = BLASRuntime.coreName          // this test process: OpenBLAS's own detection
        let expected = BLASRuntime.coreTypeToRequest(detected: inProcess, cpuLevel: .current) ?? inProcess
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            #expect(run.stdout.contains("(kernels: \(expected))"), "\(run.stdout)")
        }
    }

    /// HH_BLAS_CORE: portable asks for Haswell on an AVX2 machine (keeping a detected Zen), a name for that set,
    /// detected keeps OpenBLAS's choice; a bad value is exit 2 with one line, nothing run.
    @Test func hhBLASCorePolicy() throws {
        let unset: [String: String?] = ["OPENBLAS_CORETYPE": nil]
        if BLASRuntime.CPULevel.current >= .avx2 {
            // Zen's kernels give Haswell's results, so portable keeps a detected Zen (AMD).
            let kept = ["Haswell", "Zen"].first { $0.lowercased() == BLASRuntime.coreName.lowercased() }
            let portable = try runCLI(["version"], environment: unset.merging(["HH_BLAS_CORE": "portable"]) { $1 })
            #expect(portable.status == 0 && portable.stdout.contains("(kernels: \(kept ?? "Haswell"))"), "\(portable.stdout)")
        }
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {       // this process: OpenBLAS's own choice
            let detected = try runCLI(["version"], environment: unset.merging(["HH_BLAS_CORE": "detected"]) { $1 })
            #expect(detected.stdout.contains("(kernels: \(BLASRuntime.coreName))"), "\(detected.stdout)")
        }
        let bad = try runCLI(["formats"], environment: unset.merging(["HH_BLAS_CORE": "Pentium"]) { $1 })
        #expect(bad.status == 2 && bad.stdout.isEmpty)
        #expect(bad.stderr.hasPrefix("error: HH_BLAS_CORE=Pentium: expected auto, portable, detected or one of"), "\(bad.stderr)")
    }

    /// HH_MALLOC: by default the executable keeps freed memory (`version` says so), `system`
    /// keeps glibc's defaults; a bad value is exit 2 with one line, nothing run.
    @Test func hhMallocPolicy() throws {
        let kept = try runCLI(["version"], environment: ["HH_MALLOC": nil])
        #expect(kept.status == 0 && kept.stdout.contains("malloc: glibc, freed memory kept (M_MMAP_MAX=0, M_TRIM_THRESHOLD=max, M_ARENA_MAX=1)"), "\(kept.stdout)")
        let system = try runCLI(["version"], environment: ["HH_MALLOC": "system"])
        #expect(system.status == 0 && system.stdout.contains("malloc: system default"), "\(system.stdout)")
        let bad = try runCLI(["formats"], environment: ["HH_MALLOC": "jemalloc"])
        #expect(bad.status == 2 && bad.stdout.isEmpty)
        #expect(bad.stderr == "error: HH_MALLOC='jemalloc' is not an allocator policy (keep, system)\n", "\(bad.stderr)")
    }

    /// Freed memory kept, the executable faults each page of its peak in about once, however
    /// many FD-HVPs it runs: three central FD-HVPs (and a warm-up) of a 9.4·10⁶-parameter MLP,
    /// whose fp32 arrays (38 MB) are above glibc's largest mmap threshold (32 MiB). With
    /// glibc's defaults (`HH_MALLOC=system`) every HVP maps and faults its arrays in afresh:
    /// the same run takes 3.5× its peak in faults (the check that the workload still
    /// allocates blocks that large, so that the first check can fail). Measured on the child
    /// alone (`wait4`), which the parallel tests' children do not disturb.
    @Test func keptMemoryIsFaultedInOnce() throws {
        let args = ["bench", "shard-hvp", "--shards", "0", "--model", "mlp:widths=3072-3072-10,samples=1", "--reps", "3"]
        let kept = try runCLIResources(args, environment: [:])
        let system = try runCLIResources(args, environment: ["HH_MALLOC": "system"])
        #expect(kept.status == 0 && system.status == 0)
        let keptPerPeakPage = Double(kept.minorFaults) / Double(kept.maxRSSKiB / 4)
        let systemPerPeakPage = Double(system.minorFaults) / Double(system.maxRSSKiB / 4)
        #expect(keptPerPeakPage < 1.2, "kept: \(kept.minorFaults) faults, peak \(kept.maxRSSKiB) KiB")
        #expect(systemPerPeakPage > 2, "system: \(system.minorFaults) faults, peak \(system.maxRSSKiB) KiB")
    }

    /// `bench shard-hvp` in process: the unsharded baseline row (`--shards 0`) and a
    /// two-rank row whose collectives and bytes are those of a central FD-HVP on the
    /// 6-8-3 MLP (n = 83, shards of 42, padded to 84): per rank two gradients, each an
    /// all-gather of the perturbed shard and a reduce-scatter of the padded gradient
    /// (binary32 under the default fp32 policy: 4 bytes a value), then the all-gather of
    /// ĥ (Doubles) — 5 collectives, 4·(2·42 + 2·84) + 8·42 = 1344 bytes; under an fp64
    /// policy every value is 8 bytes: 8·(3·42 + 2·84) = 2352.
    @Test func shardBenchmarkCountsCollectives() throws {
        let model = ["--model", "mlp:widths=6-8-3,samples=16", "--reps", "1"]
        let base = try runCLI(["bench", "shard-hvp", "--shards", "0"] + model)
        #expect(base.status == 0, "\(base.stderr)")
        let header = "backend,ranks,rank,model,n,seconds_per_hvp,collectives_per_hvp,bytes_sent_per_hvp,max_rss_mib,hvp_rss_delta_mib,mem_model_mib,allocator,pred_s"
        // Split naively on commas, the quoted spec becomes fields 3 and 4: n is field 5,
        // the collectives 7 and the bytes 8.
        let b = base.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(base.stdout.hasPrefix(header + "\n") && b.count == 2 && b[1][0] == "unsharded" && b[1][1] == "1" && b[1][7] == "0" && b[1][8] == "0",
                "\(base.stdout)")
        let two = try runCLI(["bench", "shard-hvp", "--shards", "2"] + model)
        let t = two.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(two.status == 0 && t.count == 2 && t[1][0] == "in-process" && t[1][1] == "2" && t[1][5] == "83", "\(two.stdout)\(two.stderr)")
        #expect(t.count == 2 && t[1][7] == "5" && t[1][8] == "1344", "\(two.stdout)")
        let fp64 = try runCLI(["bench", "shard-hvp", "--shards", "2", "--policy", "param=fp64,compute=fp64,accumulate=blas,grad=fp64,hvp=fp64"] + model)
        let f = fp64.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(f.count == 2 && f[1][7] == "5" && f[1][8] == "2352", "\(fp64.stdout)\(fp64.stderr)")
        // The memory model covers the binary32 path only: a cell under fp32, empty under fp64.
        #expect(t.count == 2 && t[1].count == 14 && Double(t[1][11]) != nil && t[1][12] == "keep" && t[1][13] == "", "\(two.stdout)")
        #expect(f.count == 2 && f[1].count == 14 && f[1][11] == "", "\(fp64.stdout)")
    }

    /// `--cost-model`: a rank's predicted time is the family's central FD-HVP model at the
    /// rank's block. With only bytes and a fixed cost (c_b = 1e-9 s/byte, c_0 = 0.5 s) the
    /// prediction is exact arithmetic: the 6-8-3 MLP (n = 83) over a block of b samples
    /// moves 4·(4·83 + 4·25b) bytes per gradient, the FD-HVP two of them and 8·83·9 bytes
    /// of fp64 passes — 15,032 bytes at two ranks (b = 8), 21,432 unsharded (b = 16).
    /// A missing file or family is one line and exit 2.
    @Test func shardBenchmarkPredictsFromACostModel() throws {
        let dir = tempDir("shard-cost-model")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("costmodel.csv").path
        try ("quantity,family,shards,c_gemm,c_flop_s,c_byte_s,c_pass,c_0_s,fit_points,fit_rms_rel,n_min,n_max\n"
             + "time_grad_s,mlp,1,1.0,0.0,0.0,1.0,0.0,5,0.01,10,100\n"
             + "time_hvp_central_s,mlp,1,0.0,0.0,1e-9,0.0,0.5,5,0.01,10,100\n").write(toFile: path, atomically: true, encoding: .utf8)
        let model = ["--model", "mlp:widths=6-8-3,samples=16", "--reps", "1", "--cost-model", path]
        // 0.5 s + 1 ns per byte of two gradients over the largest rank's block of samples
        // (8 of 16 samples on two ranks, all 16 unsharded): 2·B = 9 056 and 15 456 bytes.
        for (shards, want) in [("2", 0.5 + 9_056e-9), ("0", 0.5 + 15_456e-9)] {
            let r = try runCLI(["bench", "shard-hvp", "--shards", shards] + model)
            let row = r.stdout.split(separator: "\n").last!.split(separator: ",", omittingEmptySubsequences: false)
            #expect(r.status == 0 && row.count == 14, "\(r.stdout)\(r.stderr)")
            #expect(abs((Double(row.last ?? "") ?? 0) - want) < 1e-12, "\(r.stdout)")
        }
        let missing = try runCLI(["bench", "shard-hvp", "--shards", "1", "--model", "transformer:context=4,width=8,heads=2,layers=1,ff=8,sequences=2",
                                  "--reps", "1", "--cost-model", path])
        #expect(missing.status == 2 && missing.stdout.isEmpty && missing.stderr.contains("family 'transformer'"), "\(missing.stderr)")
        // A costmodel.csv of the model before the pass seconds (no c_pass column) is refused.
        let old = dir.appendingPathComponent("old.csv").path
        try ("quantity,family,shards,c_gemm,c_flop_s,c_byte_s,c_0_s,fit_points,fit_rms_rel,n_min,n_max\n"
             + "time_hvp_central_s,mlp,1,0.0,0.0,1e-9,0.5,5,0.01,10,100\n").write(toFile: old, atomically: true, encoding: .utf8)
        let before = try runCLI(["bench", "shard-hvp", "--shards", "1"] + model.dropLast() + [old])
        #expect(before.status == 2 && before.stdout.isEmpty && before.stderr.contains("c_pass"), "\(before.stderr)")
        let none = try runCLI(["bench", "shard-hvp", "--shards", "1"] + model.dropLast() + [dir.appendingPathComponent("nope.csv").path])
        #expect(none.status == 2 && none.stdout.isEmpty && none.stderr.contains("cannot open"), "\(none.stderr)")
    }
}
