import Testing
import Foundation
import Harness

// The MPI backend against the in-process simulation, on loopback: `mpirun -np 2`
// and `-np 3` of hessian-harness-mpi must write what hessian-harness writes with
// `--shards N` (HVPs, SLQ) or in one process (sweeps), byte for byte, and a sweep
// whose rank is killed must report it and resume without loss or duplicates.
// This target exists only when Open MPI is installed (see Package.swift).

let buildDir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct Outcome { var status: Int32; var stdout: String; var stderr: String }

/// Runs a program to completion; `onStart` gets its pid.
func launch(_ exe: String, _ args: [String], env: [String: String] = [:], onStart: ((Int32) -> Void)? = nil) throws -> Outcome {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    e["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; e["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    e["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    for (k, v) in env { e[k] = v }
    p.environment = e
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    onStart?(p.processIdentifier)
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let r = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Outcome(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: r, as: UTF8.self))
}

func mpirunPath() throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let p = "\(dir)/mpirun"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    throw TestFailure("mpirun not found on PATH: install openmpi-bin")
}
struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

func mpi(_ np: Int, _ args: [String], env: [String: String] = [:], onStart: ((Int32) -> Void)? = nil) throws -> Outcome {
    try launch(try mpirunPath(), ["--allow-run-as-root", "--oversubscribe", "-np", "\(np)", buildDir.appendingPathComponent("hessian-harness-mpi").path] + args,
               env: env, onStart: onStart)
}
func local(_ args: [String]) throws -> Outcome { try launch(buildDir.appendingPathComponent("hessian-harness").path, args) }

func scratch(_ name: String) -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("hh-mpi-\(name)-\(getpid())")
    try? FileManager.default.removeItem(at: d)
    try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}
func bytes(_ d: URL, _ f: String) -> Data? { FileManager.default.contents(atPath: d.appendingPathComponent(f).path) }
/// A CSV without the named (timing) columns.
func csvDropping(_ d: URL, _ f: String, _ drop: Set<String>) -> [[String]] {
    let lines = String(decoding: bytes(d, f) ?? Data(), as: UTF8.self).split(separator: "\n").map { splitCSV(String($0)) }
    guard let header = lines.first else { return [] }
    let keep = header.indices.filter { !drop.contains(header[$0]) }
    return lines.map { row in keep.map { row[$0] } }
}
func splitCSV(_ line: String) -> [String] {
    var cells: [String] = [], cur = "", quoted = false
    for c in line {
        if c == "\"" { quoted.toggle(); cur.append(c) } else if c == "," && !quoted { cells.append(cur); cur = "" } else { cur.append(c) }
    }
    return cells + [cur]
}

@Suite(.serialized) struct MPIBackendTests {
    // bf16 and stochastic fp32 take the staged path (fp64 carriers); fp32 to nearest the
    // binary32 one (MPI_FLOAT collectives).
    let policies = ["param=bf16,compute=bf16,accumulate=fp32,grad=bf16,hvp=fp32",
                    "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32,rounding=stochastic",
                    "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"]

    @Test(arguments: [2, 3]) func hvpEqualsTheInProcessSimulation(np: Int) throws {
        let d = scratch("hvp\(np)")
        for (i, pol) in policies.enumerated() {
            for order in ["sequential", "tree"] {
                let common = ["hvp", "--model", "mlp:widths=6-8-3,samples=16", "--policy", pol, "--eps", "1e-2", "--order", order, "--seed", "3"]
                let a = try mpi(np, common + ["--out", d.appendingPathComponent("mpi-\(i)-\(order)").path])
                let b = try local(common + ["--shards", "\(np)", "--out", d.appendingPathComponent("ip-\(i)-\(order)").path])
                #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
                let hm = bytes(d.appendingPathComponent("mpi-\(i)-\(order)"), "hv.npy"), hi = bytes(d.appendingPathComponent("ip-\(i)-\(order)"), "hv.npy")
                #expect(hm != nil && hm == hi, "np=\(np) \(pol) \(order): hv.npy differs from --shards \(np)")
                let drop: Set = ["time_grad_s", "time_hvp_s", "time_reference_s", "hvp_over_grad", "peak_rss_grad_bytes", "peak_rss_hvp_bytes", "peak_rss_reference_bytes"]
                #expect(csvDropping(d.appendingPathComponent("mpi-\(i)-\(order)"), "summary.csv", drop)
                        == csvDropping(d.appendingPathComponent("ip-\(i)-\(order)"), "summary.csv", drop))
            }
        }
        // Stochastic rounding in the shards: a rerun is identical.
        let sr = ["hvp", "--model", "mlp:widths=6-8-3,samples=16", "--policy", policies[1], "--eps", "1e-2", "--seed", "3", "--out"]
        _ = try mpi(np, sr + [d.appendingPathComponent("sr-again").path])
        #expect(bytes(d.appendingPathComponent("sr-again"), "hv.npy") == bytes(d.appendingPathComponent("mpi-1-sequential"), "hv.npy"))
    }

    @Test(arguments: [2, 3]) func slqEqualsTheInProcessSimulation(np: Int) throws {
        let d = scratch("slq\(np)")
        let regimes = repoRoot.appendingPathComponent("results/regimes/regimes.json").path
        for reorth in ["full", "none"] {
            let common = ["slq", "--model", "mlp:widths=6-8-3,samples=16", "--regimes", regimes,
                          "--policy", "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32",
                          "--scheme", "central", "--step-policy", "absolute", "--probes", "2", "--steps", "10", "--reorth", reorth, "--seed", "1"]
            let m = d.appendingPathComponent("mpi-\(reorth)"), l = d.appendingPathComponent("ip-\(reorth)")
            let a = try mpi(np, common + ["--out", m.path])
            let b = try local(common + ["--shards", "\(np)", "--out", l.path])
            #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
            for f in ["nodes.csv", "lanczos.csv", "density.csv"] {
                #expect(bytes(m, f) != nil && bytes(m, f) == bytes(l, f), "np=\(np) reorth \(reorth): \(f) differs")
            }
            let drop: Set = ["time_lanczos_s", "time_lanczos_step_s", "time_lanczos_first_step_s", "time_lanczos_step_warm_s", "time_lanczos_hvp_warm_s"]
            #expect(csvDropping(m, "summary.csv", drop) == csvDropping(l, "summary.csv", drop))
            #expect(csvDropping(m, "summary.csv", drop)[1].count > 20)
        }
    }

    @Test(arguments: [2, 3]) func sweepEqualsTheSingleProcessRun(np: Int) throws {
        let d = scratch("sweep\(np)")
        let exp = repoRoot.appendingPathComponent("experiments/fd-bias.yaml").path
        let a = try mpi(np, ["run", exp, "--quick", "--out", d.appendingPathComponent("mpi").path])
        let b = try local(["run", exp, "--quick", "--out", d.appendingPathComponent("one").path])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        for f in ["points.csv", "fits.csv"] {
            #expect(bytes(d.appendingPathComponent("mpi"), f) != nil && bytes(d.appendingPathComponent("mpi"), f) == bytes(d.appendingPathComponent("one"), f))
        }
        let manifest = String(decoding: bytes(d.appendingPathComponent("mpi"), "manifest.json") ?? Data(), as: UTF8.self)
        #expect(manifest.contains("\"mpi_ranks\" : \"\(np)\""))
        #expect(!FileManager.default.fileExists(atPath: d.appendingPathComponent("mpi/.sweep").path), "journal removed")
    }

    @Test func aKilledRankIsReportedAndTheSweepResumes() throws {
        let d = scratch("kill")
        let exp = repoRoot.appendingPathComponent("experiments/fd-bias.yaml").path
        let out = d.appendingPathComponent("mpi")
        let units = out.appendingPathComponent(".sweep/units")
        // Configurations recorded by the ranks' journal logs (complete lines only).
        func journaled() -> Int { Sweep.journaledUnits(in: out) }
        // Each configuration takes ≥ 0.5 s; once two are journaled, kill -9 one rank.
        let killed = try mpi(2, ["run", exp, "--quick", "--out", out.path], env: ["HH_TEST_UNIT_DELAY_MS": "500"]) { mpirun in
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline && journaled() < 2 { usleep(20_000) }
            let children = (try? String(contentsOfFile: "/proc/\(mpirun)/task/\(mpirun)/children", encoding: .utf8)) ?? ""
            if let victim = children.split(separator: " ").compactMap({ Int32($0) }).last { kill(victim, SIGKILL) }
        }
        #expect(killed.status != 0, "the job must fail when a rank dies")
        #expect(killed.stderr.contains("signal 9") || killed.stderr.contains("Killed"), "mpirun names the killed rank: \(killed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("points.csv").path), "no results from a failed sweep")
        let kept = journaled()
        #expect(kept >= 2 && kept < 8, "journal keeps the finished configurations (\(kept))")

        // Whatever the kill caught, also leave a torn journal line behind (a crash in mid-write).
        _ = FileManager.default.createFile(atPath: units.appendingPathComponent("rank9-1.log").path, contents: Data("{\"index\":7,\"ke".utf8))
        let resumed = try mpi(2, ["run", exp, "--quick", "--out", out.path, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming, \(kept) of 8 configurations already done"), "\(resumed.stderr)")
        let one = try local(["run", exp, "--quick", "--out", d.appendingPathComponent("one").path])
        #expect(one.status == 0)
        for f in ["points.csv", "fits.csv"] {
            #expect(bytes(out, f) != nil && bytes(out, f) == bytes(d.appendingPathComponent("one"), f), "\(f): lost or duplicated rows")
        }
    }

    @Test func badInputIsReportedOnceAndWritesNothing() throws {
        let d = scratch("bad")
        let a = try mpi(2, ["hvp", "--model", "nosuch:n=3", "--out", d.appendingPathComponent("x").path])
        #expect(a.status != 0)
        #expect(a.stderr.components(separatedBy: "error: --model").count == 2, "one error line, from rank 0: \(a.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.appendingPathComponent("x").path))
        let b = try mpi(2, ["hvp", "--model", "mlp:widths=6-8-3,samples=16", "--shards", "3", "--out", d.appendingPathComponent("y").path])
        #expect(b.status != 0 && b.stderr.contains("--shards 3 differs from the job's 2 ranks"))
        let v = try mpi(2, ["version"])
        #expect(v.status == 0 && v.stdout.components(separatedBy: "hessian-harness ").count == 2, "printed once: \(v.stdout)")
        let c = try mpi(2, ["formats"])
        #expect(c.status != 0 && c.stderr.contains("does not run as a multi-process job"))
    }

    @Test func shardBenchmarkReportsEveryRank() throws {
        let r = try mpi(2, ["bench", "shard-hvp", "--model", "mlp:widths=6-8-3,samples=16", "--reps", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 3 && lines[1].hasPrefix("mpi,2,0,") && lines[2].hasPrefix("mpi,2,1,"), "\(r.stdout)")
        // The in-process count (CLITests.shardBenchmarkCountsCollectives): binary32 points and
        // gradients over MPI_FLOAT, ĥ as Doubles.
        for line in lines.dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            #expect(cells.count == 14 && cells[7] == "5" && cells[8] == "1344", "\(line)")
        }
    }
}
