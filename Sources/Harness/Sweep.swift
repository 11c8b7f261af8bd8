import Foundation
import Synchronization
import Studies

/// Runs an experiment's units in parallel, journals each completed unit, and
/// writes the tables and manifest when all are done.
///
/// Crash safety: each completed unit is written atomically (temporary file +
/// fsync + rename) to `DIR/.sweep/units/`, and the results (CSV, JSON, manifest)
/// are written only when every unit has completed, each file atomically. A run
/// killed at any point (even `kill -9`) leaves whole journal files and whole (old
/// or new) results; `--resume` reloads the journal, runs only the missing units
/// (at most the ones that were in flight are lost) and assembles the same tables,
/// in unit order, so there is never a duplicated or partial row. The journal is
/// removed once the results are written.
public struct Sweep {
    public var experiment: Experiment
    public var out: URL
    public var resume: Bool
    public var jobs: Int
    public var command: [String]
    /// Progress bar on a terminal, one line per unit otherwise (nil: decide by isatty(2)).
    public var interactive: Bool?

    public init(experiment: Experiment, out: URL, resume: Bool, jobs: Int, command: [String], interactive: Bool? = nil) {
        self.experiment = experiment; self.out = out; self.resume = resume; self.jobs = jobs; self.command = command
        self.interactive = interactive
    }

    struct JournalHeader: Codable, Equatable {
        var study: String, experimentSHA256: String, quick: Bool, units: Int
    }
    struct JournalUnit: Codable { var index: Int; var key: String; var output: UnitOutput }

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
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: out.path, isDirectory: &isDir), !isDir.boolValue {
            throw HarnessError("output path '\(out.path)' exists and is not a directory")
        }
        let journal = out.appendingPathComponent(".sweep"), unitsDir = journal.appendingPathComponent("units")
        let header = JournalHeader(study: study.name, experimentSHA256: experiment.sha256, quick: experiment.quick, units: units.count)
        let createdOut = !fm.fileExists(atPath: out.path)
        // Reads the completed units of the journal.
        func loadJournal() throws -> [Int: UnitOutput] {
            var done: [Int: UnitOutput] = [:]
            for f in (try? fm.contentsOfDirectory(atPath: unitsDir.path)) ?? [] where f.hasSuffix(".json") {
                guard let d = fm.contents(atPath: unitsDir.appendingPathComponent(f).path),
                      let j = try? JSONDecoder().decode(JournalUnit.self, from: d) else { continue }   // unreadable: recompute
                guard j.index >= 0, j.index < units.count, units[j.index].key == j.key else {
                    throw HarnessError("journal entry \(f) does not match the experiment; remove \(journal.path) to start over")
                }
                done[j.index] = j.output
            }
            return done
        }
        // Rank 0 checks or creates the journal; in a job the other ranks wait for it.
        var setupError: Error? = nil
        if Cluster.isRoot {
            do {
                if fm.fileExists(atPath: journal.path) {
                    guard resume else {
                        throw HarnessError("'\(out.path)' holds an unfinished sweep (\(journal.path)); pass --resume to complete it, or remove that folder to start over")
                    }
                    let h = try? JSONDecoder().decode(JournalHeader.self, from: Data(contentsOf: journal.appendingPathComponent("header.json")))
                    guard h == header else {
                        throw HarnessError("the unfinished sweep in '\(out.path)' was started from a different experiment (file changed, or --quick differs); remove \(journal.path) to start over")
                    }
                    _ = try loadJournal()
                    // A writer killed inside AtomicFile.write leaves its temporary sibling;
                    // it holds no finished unit, so it goes.
                    for f in (try? fm.contentsOfDirectory(atPath: unitsDir.path)) ?? [] where AtomicFile.isTemporary(f) {
                        try? fm.removeItem(at: unitsDir.appendingPathComponent(f))
                    }
                } else {
                    try fm.createDirectory(at: unitsDir, withIntermediateDirectories: true)
                    try AtomicFile.write(try JSONEncoder().encode(header), to: journal.appendingPathComponent("header.json"))
                }
            } catch { setupError = error }
        }
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
                                label: world == nil ? study.name : "\(study.name) (rank \(rank) of \(size))")
        let state = Mutex<(next: Int, outputs: [Int: UnitOutput], error: String?)>((0, done, nil))
        let context = StudyContext()
        let delay = ProcessInfo.processInfo.environment["HH_TEST_UNIT_DELAY_MS"].flatMap { Double($0) } ?? 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
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
                    let data = try encoder.encode(JournalUnit(index: i, key: units[i].key, output: o))
                    try AtomicFile.write(data, to: unitsDir.appendingPathComponent(String(format: "%06d.json", i)))
                    state.withLock { $0.outputs[i] = o }
                    progress.completed(units[i].key, seconds: Date().timeIntervalSince(t0))
                } catch {
                    state.withLock { s in if s.error == nil { s.error = "configuration \(units[i].key): \(error)" } }
                    return
                }
            }
        }
        let n = study.exclusive ? 1 : min(jobs, max(pending.count, 1))
        let group = DispatchGroup()
        for _ in 0..<n {
            group.enter()
            let t = Thread { worker(); group.leave() }
            t.stackSize = 16 << 20
            t.start()
        }
        group.wait()
        progress.finish()
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
            if createdOut && outputs.count == 0 { try? fm.removeItem(at: out) }
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
        var m = Manifest(command: command, seeds: study.seeds, parameters: params, start: start, end: Date())
        m.experimentFile = experiment.path
        m.experimentSHA256 = experiment.sha256
        m.study = study.name
        bundle.add("manifest.json", try m.json())
        try bundle.write(to: out)
        try fm.removeItem(at: journal)
    }
}

/// Progress of a sweep on stderr: a bar with ETA on a terminal, plain lines otherwise.
final class Progress: Sendable {
    let total: Int, interactive: Bool, label: String
    let state: Mutex<(done: Int, started: Date, fresh: Int)>
    init(total: Int, already: Int, overall: Int, interactive: Bool, label: String) {
        self.total = total; self.interactive = interactive; self.label = label
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
        var b = Array(s.utf8)
        _ = b.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
