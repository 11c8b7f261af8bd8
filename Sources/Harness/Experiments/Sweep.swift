import Foundation
import Synchronization
import Studies
import LinearAlgebra

/// Runs an experiment's units in parallel, journals each completed unit, and
/// writes the tables and manifest when all are done.
///
/// Crash safety: each completed unit is appended as one JSON line to this
/// process's log in `DIR/.sweep/units/` (``JournalLog``), and the results (CSV,
/// JSON, manifest) are written only when every unit has completed, as one set
/// (``OutputBundle/write(to:lock:)``). A run killed at any point (even `kill -9`)
/// leaves whole journal lines and whole (old or new) results; `--resume` reloads the
/// journal, runs only the missing units (at most the ones that were in flight are
/// lost) and assembles the same tables, in unit order, so there is never a
/// duplicated or partial row. The journal pins the experiment, every input file and
/// the program (a resume with any of them changed is refused), the folder's lock
/// keeps a second run out for the whole sweep, and the journal is removed once the
/// results are written.
public struct Sweep {
    public var experiment: Experiment
    public var out: URL
    public var resume: Bool
    public var jobs: Int
    public var command: [String]
    /// Progress bar on a terminal, one line per unit otherwise (nil: decide by isatty(2)).
    public var interactive: Bool?
    /// No progress output (benchmarks).
    public var quiet: Bool

    public init(experiment: Experiment, out: URL, resume: Bool, jobs: Int, command: [String], interactive: Bool? = nil, quiet: Bool = false) {
        self.experiment = experiment; self.out = out; self.resume = resume; self.jobs = jobs; self.command = command
        self.interactive = interactive; self.quiet = quiet
    }

    struct JournalHeader: Codable, Equatable {
        var study: String, experimentSHA256: String, quick: Bool, units: Int
        /// SHA-256 of every file the experiment reads (``Experiment/inputFiles``).
        var inputs: [String: String]?
        /// The program that runs the sweep (``Sweep/toolIdentity()``).
        var tool: String?
    }
    struct JournalUnit: Codable { var index: Int; var key: String; var output: UnitOutput }

    /// The running program: its version and the size and modification time of its
    /// executable, so that a rebuilt binary is told apart without hashing tens of
    /// megabytes on every start.
    static func toolIdentity() -> String {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return ToolInfo.version }
        return "\(ToolInfo.version) \(st.st_size) bytes, modified \(st.st_mtim.tv_sec).\(String(format: "%09ld", st.st_mtim.tv_nsec))"
    }

    /// Why a journal cannot be resumed by this run, in plain words (nil: it can).
    static func mismatch(_ old: JournalHeader?, _ new: JournalHeader) -> String? {
        guard let old else { return "its journal header is unreadable" }
        if old.study != new.study || old.experimentSHA256 != new.experimentSHA256 || old.units != new.units {
            return "it was started from a different experiment file (or that file changed since)"
        }
        if old.quick != new.quick { return "it was started \(old.quick ? "with" : "without") --quick" }
        let a = old.inputs ?? [:], b = new.inputs ?? [:]
        for f in Set(a.keys).union(b.keys).sorted() where a[f] != b[f] {
            if a[f] == nil { return "it did not read '\(f)'" }
            if b[f] == nil { return "it read '\(f)', which this run does not" }
            return "the input file '\(f)' changed since it started (SHA-256 \(a[f]!.prefix(12))… then, \(b[f]!.prefix(12))… now)"
        }
        if old.tool != new.tool { return "the hessian-harness program changed since it started (\(old.tool ?? "unknown") then, \(new.tool ?? "unknown") now)" }
        return nil
    }

    public func run() throws {
        let start = Date()
        let world = Cluster.world
        let rank = world?.rank ?? 0, size = world?.size ?? 1
        let study = experiment.study
        let units = study.units
        guard !units.isEmpty else { throw HarnessError("\(experiment.path): the sweep has no configurations") }
        guard Set(units.map(\.key)).count == units.count else { throw HarnessError("\(experiment.path): the sweep repeats a configuration") }
        guard jobs >= 1 && jobs <= 256 else { throw HarnessError("--jobs must be in 1...256 (got \(jobs))") }
        let fm = FileManager.default
        let journal = out.appendingPathComponent(".sweep"), unitsDir = journal.appendingPathComponent("units")
        // Reads the completed units of the journal.
        func loadJournal() throws -> [Int: UnitOutput] {
            var done: [Int: UnitOutput] = [:]
            for (name, j) in Self.journalRecords(unitsDir) {
                guard j.index >= 0, j.index < units.count, units[j.index].key == j.key else {
                    throw HarnessError("journal entry \(name) does not match the experiment; remove \(journal.path) to start over")
                }
                done[j.index] = j.output
            }
            return done
        }
        // Rank 0 takes the folder's lock (held until the sweep ends: one writer per
        // results folder), checks or creates the journal; in a job the other ranks wait.
        var setupError: Error? = nil
        var lock: FolderLock? = nil
        var createdOut = false
        // The input files' SHA-256, pinned in the journal at the start and recorded in the manifest.
        var inputs: [String: String] = [:]
        if Cluster.isRoot {
            do {
                for f in experiment.inputFiles {
                    guard let d = fm.contents(atPath: f) else { throw HarnessError("cannot read the input file '\(f)'") }
                    inputs[f] = SHA256.hex(d)
                }
                let header = JournalHeader(study: study.name, experimentSHA256: experiment.sha256, quick: experiment.quick,
                                           units: units.count, inputs: inputs, tool: Self.toolIdentity())
                createdOut = !fm.fileExists(atPath: out.path)
                try FileSystem.makeDirectories(out.path)
                lock = try FolderLock.acquire(out)
                if fm.fileExists(atPath: journal.path) {
                    guard resume else {
                        throw HarnessError("'\(out.path)' holds an unfinished sweep (\(journal.path)); pass --resume to complete it, or remove that folder to start over")
                    }
                    let h = try? JSONDecoder().decode(JournalHeader.self, from: Data(contentsOf: journal.appendingPathComponent("header.json")))
                    if let why = Self.mismatch(h, header) {
                        throw HarnessError("cannot resume the unfinished sweep in '\(out.path)': \(why); remove \(journal.path) to start over")
                    }
                    _ = try loadJournal()
                    // A writer killed inside AtomicFile.write leaves its temporary sibling;
                    // it holds no finished unit, so it goes.
                    AtomicFile.removeLeftovers(in: unitsDir)
                } else {
                    if resume, let m = (try? JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json")))) as? [String: Any],
                       m["experiment_sha256"] as? String == experiment.sha256 {
                        throw HarnessError("nothing to resume: '\(out.path)' holds the finished results of this experiment (finished \(m["end_time"] as? String ?? "earlier")); run without --resume to compute them again")
                    }
                    try FileSystem.makeDirectories(unitsDir.path)
                    try AtomicFile.write(try JSONEncoder().encode(header), to: journal.appendingPathComponent("header.json"))
                }
                AtomicFile.removeLeftovers(in: out)
            } catch { setupError = error }
        }
        defer { lock?.release() }
        if let w = world, w.allReduce(setupError == nil ? 0 : 1, format: .fp64, order: .sequential) > 0 {
            throw setupError ?? PeerFailure()
        }
        if let e = setupError { throw e }
        let done = try loadJournal()

        // In a job of N ranks, rank r runs every N-th missing unit (a static partition
        // that every rank computes alike from the same journal); each rank journals its
        // own units, so --resume after any rank dies loses at most the units in flight.
        let pending = units.indices.filter { done[$0] == nil }.enumerated().filter { $0.offset % size == rank }.map(\.element)
        let progress = Progress(total: world == nil ? units.count : done.count + pending.count, already: done.count, overall: units.count,
                                interactive: world == nil && (interactive ?? (isatty(2) == 1)),
                                label: world == nil ? study.name : "\(study.name) (rank \(rank) of \(size))", quiet: quiet)
        let state = Mutex<(next: Int, outputs: [Int: UnitOutput], error: String?)>((0, done, nil))
        let context = StudyContext()
        let delay = ProcessInfo.processInfo.environment["HH_TEST_UNIT_DELAY_MS"].flatMap { Double($0) } ?? 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // This process's journal: one JSON line per finished configuration, appended.
        let log = try JournalLog(unitsDir.appendingPathComponent("rank\(rank)-\(getpid()).log"))
        let worker: @Sendable () -> Void = {
            while true {
                let slot: Int? = state.withLock { s in
                    guard s.error == nil, s.next < pending.count else { return nil }
                    defer { s.next += 1 }
                    return pending[s.next]
                }
                guard let i = slot else { return }
                let t0 = Date()
                do {
                    if delay > 0 { usleep(UInt32(delay * 1000)) }
                    let o = try study.run(unit: i, context: context)
                    try log.append(try encoder.encode(JournalUnit(index: i, key: units[i].key, output: o)))
                    state.withLock { $0.outputs[i] = o }
                    progress.completed(units[i].key, seconds: Date().timeIntervalSince(t0))
                } catch {
                    state.withLock { s in if s.error == nil { s.error = "configuration \(units[i].key): \(error)" } }
                    return
                }
            }
        }
        let n = study.exclusive ? 1 : min(jobs, max(pending.count, 1))
        // Workers pull configurations from one queue, so fewer threads than asked for
        // still finish the sweep; none at all is an error.
        var ran = 0
        do { ran = try Threads.run(n, allOrNone: false) { _ in worker() } } catch {
            state.withLock { s in if s.error == nil { s.error = "\(error); lower --jobs" } }
        }
        progress.finish()
        if ran > 0 && ran < n { progress.emit("note: ran \(ran) of \(n) parallel configurations (could not start more threads)\n") }
        var (outputs, failure) = state.withLock { ($0.outputs, $0.error) }
        let kept = " (completed configurations are kept in \(journal.path); fix the cause and rerun with --resume)"
        if let w = world {
            // Every rank learns whether any failed; the failing ranks print their own message.
            let failed = w.allReduce(failure == nil ? 0 : 1, format: .fp64, order: .sequential)
            if let failure { throw RankError(failure + kept) }
            if failed > 0 {
                guard rank == 0 else { throw PeerFailure() }
                throw HarnessError("a configuration failed on another rank (its message is above)" + kept)
            }
            guard rank == 0 else { return }          // rank 0 assembles the tables from the journal
            outputs = try loadJournal()
            guard outputs.count == units.count else {
                throw HarnessError("the journal in \(journal.path) holds \(outputs.count) of \(units.count) configurations after every rank finished (is it on a file system all ranks share?)")
            }
        } else if let failure {
            // A folder this run created and in which it finished nothing goes; it holds
            // only this run's journal and lock (the lock kept any other writer out).
            if createdOut && outputs.count == 0,
               Set((try? fm.contentsOfDirectory(atPath: out.path)) ?? []).isSubset(of: [".sweep", FolderLock.fileName]) {
                try? fm.removeItem(at: journal)
                lock?.release()
                rmdir(out.path)
            }
            throw HarnessError(failure + (outputs.isEmpty ? "" : kept))
        }
        let result = try study.finish(units.indices.map { outputs[$0]! })
        var bundle = OutputBundle()
        for t in result.tables { try bundle.add(t.name + ".csv", Table(header: t.header, rows: t.rows)) }
        for f in result.files { bundle.add(f.name, f.data) }
        var params = experiment.parameters
        params["quick"] = experiment.quick ? "true" : "false"
        params["configurations"] = "\(units.count)"
        if size > 1 { params["mpi_ranks"] = "\(size)" }
        var m = Manifest(command: command, seeds: study.seeds, parameters: params, start: start, end: Date(), inputFiles: inputs)
        m.experimentFile = experiment.path
        m.experimentSHA256 = experiment.sha256
        m.study = study.name
        bundle.manifest = m
        do { try bundle.write(to: out, lock: lock) } catch {
            throw HarnessError("\(error); the completed configurations are kept in \(journal.path): run again with --resume")
        }
        try fm.removeItem(at: journal)
    }
}

extension Sweep {
    /// The finished configurations recorded in a journal's `units` folder: every
    /// complete, decodable line of its `*.log` files (a line cut short by a crash of
    /// the system is skipped, and that configuration runs again), with the file named.
    static func journalRecords(_ unitsDir: URL) -> [(String, JournalUnit)] {
        var out: [(String, JournalUnit)] = []
        let decoder = JSONDecoder()
        for f in ((try? FileManager.default.contentsOfDirectory(atPath: unitsDir.path)) ?? []).sorted() where f.hasSuffix(".log") && !f.hasPrefix(".") {
            guard let d = FileManager.default.contents(atPath: unitsDir.appendingPathComponent(f).path) else { continue }
            for line in d.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                if let j = try? decoder.decode(JournalUnit.self, from: Data(line)) { out.append((f, j)) }
            }
        }
        return out
    }

    /// How many configurations the journal of the sweep in `dir` records (tests, tools).
    public static func journaledUnits(in dir: URL) -> Int {
        Set(journalRecords(dir.appendingPathComponent(".sweep/units")).map(\.1.index)).count
    }
}

/// An append-only journal file: each record one line, written by one `write` call
/// to a file opened with `O_APPEND`.
///
/// A finished configuration used to be a file of its own (created, fsynced and
/// renamed): 10⁴ configurations cost 5–7 s of system time in file creation alone.
/// A line appended to an open file costs one system call, and survives the process
/// being killed (the data is in the kernel once `write` returns). It is not fsynced:
/// after a crash of the whole system the last lines may be lost or cut short, and
/// those configurations run again on `--resume` (``Sweep/journalRecords(_:)`` skips
/// a line that does not decode).
final class JournalLog: @unchecked Sendable {
    let fd: Int32, path: String
    let lock = Mutex<Void>(())
    init(_ url: URL) throws {
        path = url.path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystemError(errno, "creating the journal", path) }
    }
    func append(_ record: Data) throws {
        var line = record
        line.append(UInt8(ascii: "\n"))
        try lock.withLock { _ in
            try line.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
                var off = 0
                while off < b.count {
                    let n = write(fd, b.baseAddress! + off, b.count - off)
                    if n < 0 { if errno == EINTR { continue }; throw FileSystemError(errno, "writing the journal", path) }
                    off += n
                }
            }
        }
    }
    deinit { close(fd) }
}

/// Progress of a sweep on stderr: a bar with ETA on a terminal, plain lines otherwise.
final class Progress: Sendable {
    let total: Int, interactive: Bool, label: String, quiet: Bool
    let state: Mutex<(done: Int, started: Date, fresh: Int)>
    init(total: Int, already: Int, overall: Int, interactive: Bool, label: String, quiet: Bool = false) {
        self.total = total; self.interactive = interactive; self.label = label; self.quiet = quiet
        state = Mutex((already, Date(), 0))
        if already > 0 { emit("\(label): resuming, \(already) of \(overall) configurations already done\n") }
        if interactive { draw(already, 0, nil) }
    }
    func completed(_ key: String, seconds: Double) {
        let (d, fresh, started) = state.withLock { s -> (Int, Int, Date) in s.done += 1; s.fresh += 1; return (s.done, s.fresh, s.started) }
        let elapsed = Date().timeIntervalSince(started)
        let eta = elapsed / Double(fresh) * Double(total - d)
        if interactive { draw(d, elapsed, eta) }
        else { emit("[\(d)/\(total)] \(label) \(key) (\(String(format: "%.2f", seconds)) s, ETA \(Self.clock(eta)))\n") }
    }
    func draw(_ d: Int, _ elapsed: Double, _ eta: Double?) {
        let width = 30, filled = total > 0 ? width * d / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        emit("\r\u{1B}[K\(label) [\(bar)] \(d)/\(total)  \(Self.clock(elapsed)) elapsed  ETA \(eta.map(Self.clock) ?? "--:--")")
    }
    func finish() { if interactive { emit("\n") } }
    static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
    func emit(_ s: String) {
        if quiet { return }
        var b = Array(s.utf8)
        _ = b.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
