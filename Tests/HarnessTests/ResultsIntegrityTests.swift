import Testing
import Foundation
@testable import Harness

/// One writer per results folder, results all-new or all-old, a journal that pins its
/// inputs (issue 22).
@Suite(.serialized) struct ResultsIntegrityTests {
    static let tiny = """
    study: fd-bias
    models: [expsum:n=8]
    policies: ["param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"]
    schemes: [forward, central]
    eps: [1.0e-3, 1.0e-2]
    seeds: [0, 1, 2]

    """

    func exe() -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("hessian-harness")
    }

    /// Starts `hessian-harness ARGS` with each configuration slowed down.
    func start(_ args: [String], delayMS: Int) throws -> Process {
        let p = Process()
        p.executableURL = exe()
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["HH_TEST_UNIT_DELAY_MS"] = "\(delayMS)"
        p.environment = env
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    func waitFor(_ what: () -> Bool) {
        let deadline = Date().addingTimeInterval(60)
        while !what() && Date() < deadline { usleep(20_000) }
    }

    @Test func aSecondRunOfTheSameFolderIsRefusedAtOnceNamingTheHolder() throws {
        let (dir, file) = try experiment("lock", Self.tiny)
        let out = dir.appendingPathComponent("out")
        // The race of the issue: a run on its first configuration, and a --resume of the
        // same folder started beside it. The second is refused; the first finishes.
        let first = try start(["run", file, "--out", out.path, "--jobs", "1"], delayMS: 300)
        waitFor { FileManager.default.fileExists(atPath: out.appendingPathComponent(".sweep/header.json").path) }
        let second = try runCLI(["run", file, "--out", out.path, "--resume"])
        #expect(second.status == 2, Comment(rawValue: second.stderr))
        #expect(second.stderr.contains("in use by another hessian-harness run (PID \(first.processIdentifier))"), Comment(rawValue: second.stderr))
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(files(out) == ["fits.csv", "manifest.json", "points.csv"], "the first run's results, no journal, no lock file")
        try ResultsFolder.verify(out)

        // A lock held in this process (flock locks are per open file) refuses every writer.
        let lock = try FolderLock.acquire(out)
        let hvp = try runCLI(["hvp", "--model", "expsum:n=4", "--out", out.path])
        #expect(hvp.status == 2 && hvp.stderr.contains("PID \(getpid())"), Comment(rawValue: hvp.stderr))
        #expect(throws: HarnessError.self) { try FolderLock.acquire(out) }
        lock.release()
        #expect(!files(out).contains(FolderLock.fileName))
        let again = try FolderLock.acquire(out)
        again.release()
    }

    @Test func simultaneousStartsLeaveOneCompleteResult() throws {
        let (dir, file) = try experiment("simultaneous", Self.tiny)
        for trial in 0..<3 {
            let out = dir.appendingPathComponent("out\(trial)")
            let ps = try (0..<3).map { _ in try start(["run", file, "--out", out.path, "--jobs", "1"], delayMS: 20) }
            for p in ps { p.waitUntilExit() }
            let ok = ps.filter { $0.terminationStatus == 0 }.count
            #expect(ok >= 1, "at least one run completes")
            #expect(ps.allSatisfy { $0.terminationReason == .exit && [0, 2].contains($0.terminationStatus) }, "no crash")
            #expect(files(out) == ["fits.csv", "manifest.json", "points.csv"])
            try ResultsFolder.verify(out)
        }
    }

    /// A final write that fails part-way (a full disk: ENOSPC injected into the write
    /// of points.csv, after fits.csv's was staged) leaves the previous results
    /// untouched, no temporary file, a message in plain words, and the journal for --resume.
    @Test func aFailedFinalWriteLeavesTheOldResults() throws {
        let (dir, file) = try experiment("enospc", Self.tiny)
        let out = dir.appendingPathComponent("out")
        #expect(try runCLI(["run", file, "--out", out.path]).status == 0)
        let before = Dictionary(uniqueKeysWithValues: files(out).map { ($0, read(out, $0)) })
        let other = dir.appendingPathComponent("other.yaml")
        try Self.tiny.replacingOccurrences(of: "seeds: [0, 1, 2]", with: "seeds: [3, 4, 5, 6]")
            .write(to: other, atomically: true, encoding: .utf8)
        let failed = try runCLI(["run", other.path, "--out", out.path], environment: ["HH_TEST_FAIL_WRITE": "points.csv"])
        #expect(failed.status == 2, Comment(rawValue: failed.stderr))
        #expect(failed.stderr.contains("no space left on device while writing") && failed.stderr.contains("nothing was changed")
                && failed.stderr.contains("--resume") && !failed.stderr.contains("NSCocoaErrorDomain"), Comment(rawValue: failed.stderr))
        #expect(failed.stderr.components(separatedBy: "error:").count == 2, "one error line")
        #expect(files(out).filter { !$0.hasPrefix(".") } == before.keys.sorted())
        for (f, d) in before { #expect(read(out, f) == d, "\(f) changed") }
        #expect(files(out).filter { AtomicFile.isTemporary($0) }.isEmpty, "no temporary file left")
        try ResultsFolder.verify(out)
        // With space again, --resume completes the new results from the journal.
        let r = try runCLI(["run", other.path, "--out", out.path, "--resume"])
        #expect(r.status == 0 && r.stderr.contains("resuming, 8 of 8"), Comment(rawValue: r.stderr))
        #expect(read(out, "points.csv") != before["points.csv"]!)
        try ResultsFolder.verify(out)
    }

    /// A real file-size limit (`ulimit -f`, failing writes with EFBIG as a full disk fails
    /// them with ENOSPC) on hvp's results: its .npy files do not fit, the previous
    /// results stay as they were.
    @Test func aFileSizeLimitLeavesThePreviousHVPResults() throws {
        let (dir, _) = try experiment("efbig", "")
        let out = dir.appendingPathComponent("out")
        let model = "mlp:widths=16-64-4,samples=8"
        #expect(try runCLI(["hvp", "--model", model, "--reference", "none", "--out", out.path]).status == 0)
        let before = Dictionary(uniqueKeysWithValues: files(out).map { ($0, read(out, $0)) })
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        // 16 blocks of 512 bytes: params.npy (1,348 fp64 values) does not fit.
        p.arguments = ["-c", "trap '' XFSZ; ulimit -f 16; exec \"$0\" hvp --model \"$1\" --seed 1 --reference none --out \"$2\"", exe().path, model, out.path]
        let err = Pipe()
        p.standardError = err; p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 2, Comment(rawValue: message))
        #expect(message.contains("file-size limit (ulimit -f) while writing") && message.contains("nothing was changed"), Comment(rawValue: message))
        #expect(files(out) == before.keys.sorted())
        for (f, d) in before { #expect(read(out, f) == d, "\(f) changed") }
    }

    @Test func leftoverTemporaryFilesAreRemovedAndStaleFilesOfTheOldSetGo() throws {
        let dir = tempDir("bundle")
        var a = OutputBundle()
        a.add("a.csv", Data("x\n1\n".utf8)); a.add("b.csv", Data("y\n2\n".utf8))
        a.manifest = Manifest(command: ["test"], seeds: [:], parameters: [:], start: Date(), end: Date())
        try a.write(to: dir)
        #expect(files(dir) == ["a.csv", "b.csv", "manifest.json"])
        let m = try JSONSerialization.jsonObject(with: read(dir, "manifest.json")) as! [String: Any]
        #expect(m["files"] as? [String: String] == ["a.csv": SHA256.hex(Data("x\n1\n".utf8)), "b.csv": SHA256.hex(Data("y\n2\n".utf8))])
        // A writer killed during its final write left a temporary file.
        try Data("partial".utf8).write(to: dir.appendingPathComponent(".a.csv.tmp-99999"))
        var b = OutputBundle()
        b.add("a.csv", Data("x\n3\n".utf8))
        b.manifest = a.manifest
        try b.write(to: dir)
        #expect(files(dir) == ["a.csv", "manifest.json"], "b.csv belonged to the old set only; the leftover is gone")
        try ResultsFolder.verify(dir)
        // A reader refuses a set that does not match its manifest.
        try Data("x\n4\n".utf8).write(to: dir.appendingPathComponent("a.csv"))
        #expect { try ResultsFolder.verify(dir) } throws: { "\($0)".contains("a.csv differs") }
        let report = try runCLI(["report", dir.path, "--out", tempDir("report").path])
        #expect(report.status == 2 && report.stderr.contains("a.csv differs"), Comment(rawValue: report.stderr))
    }

    @Test func resumeRefusesChangedInputsAndFinishedFolders() throws {
        let (dir, _) = try experiment("pins", "")
        let data = dir.appendingPathComponent("d.csv")
        try "a,b,label\n1,2,0\n-1,0.5,1\n0.25,-2,1\n3,1,0\n".write(to: data, atomically: true, encoding: .utf8)
        let file = dir.appendingPathComponent("pins.yaml").path
        try """
        study: fd-bias
        models: ["mlp:widths=2-3-2,data=\(data.path)"]
        policies: ["param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"]
        schemes: [forward, central]
        eps: [1.0e-3, 1.0e-2]
        seeds: [0, 1, 2, 3]

        """.write(toFile: file, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let p = try start(["run", file, "--out", out.path, "--jobs", "1"], delayMS: 400)
        waitFor { Sweep.journaledUnits(in: out) >= 1 }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // The data file changes: --resume refuses and names it.
        try "a,b,label\n1,2,0\n-1,0.5,1\n0.25,-2,1\n3,1.5,0\n".write(to: data, atomically: true, encoding: .utf8)
        let r = try runCLI(["run", file, "--out", out.path, "--resume"])
        #expect(r.status == 2 && r.stderr.contains("the input file '\(data.path)' changed"), Comment(rawValue: r.stderr))
        // Restored, the sweep resumes and completes.
        try "a,b,label\n1,2,0\n-1,0.5,1\n0.25,-2,1\n3,1,0\n".write(to: data, atomically: true, encoding: .utf8)
        let r2 = try runCLI(["run", file, "--out", out.path, "--resume"])
        #expect(r2.status == 0 && r2.stderr.contains("resuming"), Comment(rawValue: r2.stderr))
        // --resume on the finished folder does not silently recompute it.
        let r3 = try runCLI(["run", file, "--out", out.path, "--resume"])
        #expect(r3.status == 2 && r3.stderr.contains("nothing to resume"), Comment(rawValue: r3.stderr))
    }

    @Test func journalMismatchSaysWhatChanged() {
        typealias H = Sweep.JournalHeader
        let h = H(study: "fd-bias", experimentSHA256: "aa", quick: false, units: 4, inputs: ["d.csv": "0123456789abcdef"], tool: "0.1.0 1 bytes")
        #expect(Sweep.mismatch(h, h) == nil)
        var t = h; t.tool = "0.1.0 2 bytes"
        #expect(Sweep.mismatch(h, t)?.contains("program changed") == true)
        var q = h; q.quick = true
        #expect(Sweep.mismatch(h, q)?.contains("without --quick") == true)
        var i = h; i.inputs = ["d.csv": "fedcba9876543210"]
        #expect(Sweep.mismatch(h, i)?.contains("'d.csv' changed") == true)
        var e = h; e.experimentSHA256 = "bb"
        #expect(Sweep.mismatch(h, e)?.contains("different experiment") == true)
        #expect(Sweep.mismatch(nil, h)?.contains("unreadable") == true)
    }

    @Test func outputNamesThatWouldEscapeOrVanishAreRefused() throws {
        for name in ["..", ".", ".hidden", "a/b"] {
            let (dir, file) = try experiment("name", "name: \"\(name)\"\n" + Self.tiny)
            let r = try runCLI(["run", file])
            #expect(r.status == 2 && r.stderr.contains("name '\(name)' must be"), Comment(rawValue: r.stderr))
            #expect(files(dir) == ["name.yaml"])
        }
        let (_, file) = try experiment("emptyout", Self.tiny)
        for args in [["run", file, "--out", ""], ["run", file, "--out="], ["hvp", "--model", "expsum:n=4", "--out", " "]] {
            let r = try runCLI(args)
            #expect(r.status == 2 && r.stderr.contains("--out needs a path"), Comment(rawValue: r.stderr))
        }
        // A parent that is a file, and a read-only folder: plain words, no Foundation domain.
        let (dir, _) = try experiment("parentfile", "")
        let blocker = dir.appendingPathComponent("file")
        try Data().write(to: blocker)
        let r = try runCLI(["hvp", "--model", "expsum:n=4", "--out", blocker.appendingPathComponent("sub").path])
        #expect(r.status == 2 && r.stderr.contains("exists and is not a folder") && !r.stderr.contains("Domain"), Comment(rawValue: r.stderr))
    }
}
