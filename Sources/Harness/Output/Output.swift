import Foundation
import CSV
import Scalars
import COpenBLAS
import LinearAlgebra
import Studies
import Models

/// A tidy table: one header row, snake_case columns (NUMERICS.md §10).
public struct Table: Sendable {
    public var header: [String]
    public var rows: [[String]]
    public init(header: [String], rows: [[String]] = []) { self.header = header; self.rows = rows }

    public mutating func append(_ row: [String]) {
        precondition(row.count == header.count, "row of \(row.count) fields for \(header.count) columns")
        rows.append(row)
    }

    /// RFC 4180 CSV (written by CSV.swift), with a final newline.
    public func csv() throws -> Data {
        let w = try CSVWriter(stream: .toMemory())
        try w.write(row: header)
        for r in rows { try w.write(row: r) }
        w.stream.close()
        var data = w.stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        if data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        return data
    }
}

/// Number formatting for CSV: Swift's shortest round-trip decimal.
/// A Double in a CSV cell: the shortest round-trip form; every NaN as `nan`. The sign
/// of a NaN is not part of IEEE 754's arithmetic (an optimizer may swap the operands of
/// `a + b`, whose NaN then comes from the other side), so printing it would make two
/// builds of the same arithmetic write different files.
@inlinable public func csvNumber(_ x: Double) -> String { x.isNaN ? "nan" : "\(x)" }

/// Files written atomically: each goes to a temporary file in the target folder
/// and is renamed over its final name, so a reader (or a crash) never sees a
/// partial file. A bundle is computed entirely before the folder is touched.
public struct OutputBundle {
    public var files: [(name: String, data: Data)] = []
    /// Written last, with the SHA-256 of every other file.
    public var manifest: Manifest?
    public init() {}
    public mutating func add(_ name: String, _ data: Data) { files.append((name, data)) }
    public mutating func add(_ name: String, _ table: Table) throws { files.append((name, try table.csv())) }

    /// One line for the terminal after a successful write: the headline figures of a
    /// one-row table of the bundle (`columns`, as `name value`; empty cells left out), the
    /// folder and the files written.
    public func summaryLine(_ command: String, table: String = "summary.csv", columns: [String], dir: String) -> String {
        var figures: [String] = []
        if let data = files.first(where: { $0.name == table })?.data {
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
            if lines.count >= 2 {
                // Figures are numbers or bare words: split on commas outside quotes.
                func fields(_ l: String) -> [String] {
                    var out: [String] = [], cur = "", quoted = false
                    for c in l { if c == "\"" { quoted.toggle() } else if c == "," && !quoted { out.append(cur); cur = "" } else { cur.append(c) } }
                    out.append(cur)
                    return out
                }
                let h = fields(lines[0]), v = fields(lines[1])
                for c in columns { if let i = h.firstIndex(of: c), i < v.count, !v[i].isEmpty {
                    let x = Double(v[i]).map { String(format: "%.4g", $0) } ?? v[i]
                    figures.append("\(c) \(x)")
                } }
            }
        }
        return "\(command): " + (figures.isEmpty ? "" : figures.joined(separator: ", ") + " ") + "→ \(dir) (\(fileNames.joined(separator: ", ")))"
    }

    /// The files a write creates, manifest last.
    public var fileNames: [String] { files.map(\.name) + (manifest == nil ? [] : ["manifest.json"]) }

    /// Writes the bundle into `dir` as one set: all new or all old.
    ///
    /// Holding the folder's lock (`lock`, or one taken here), it removes temporary
    /// files that dead writers left, then writes every file of the bundle to a
    /// temporary sibling and flushes it; only when all are on the disk does it rename
    /// them into place, `manifest.json` last, and remove the files of the previous
    /// run's set that this one does not have. The manifest lists every other file
    /// with its SHA-256 (``Manifest/files``), and readers check it
    /// (``ResultsFolder/verify(_:)``): a folder whose rename phase was cut short is
    /// refused rather than read as a mixture. A failure while writing (a full disk,
    /// say) removes the temporary files and leaves the folder as it was.
    public func write(to dir: URL, lock held: FolderLock? = nil) throws {
        let created = !FileManager.default.fileExists(atPath: dir.path)
        try FileSystem.makeDirectories(dir.path)
        let lock: FolderLock
        do { lock = try held ?? FolderLock.acquire(dir) } catch {
            if created { rmdir(dir.path) }
            throw error
        }
        defer { if held == nil { lock.release() } }
        AtomicFile.removeLeftovers(in: dir)
        var all = files
        if var m = manifest {
            m.files = Dictionary(files.map { ($0.name, SHA256.hex($0.data)) }, uniquingKeysWith: { a, _ in a })
            all.append(("manifest.json", try m.json()))
        }
        let previous = ResultsFolder.listedFiles(dir) ?? []
        var staged: [(URL, URL)] = []
        do {
            for f in all {
                let url = dir.appendingPathComponent(f.name), tmp = AtomicFile.temporary(for: url)
                unlink(tmp.path)
                try FileSystem.writeNew(f.data, to: tmp.path)
                staged.append((tmp, url))
            }
        } catch {
            for (tmp, _) in staged { unlink(tmp.path) }
            // A folder this write created goes again (it holds only the lock).
            if created && held == nil { lock.release(); rmdir(dir.path) }
            throw HarnessError("\(error); nothing was changed in '\(dir.path)'")
        }
        for (i, (tmp, url)) in staged.enumerated() {
            do { try AtomicFile.commit(tmp, to: url) } catch {
                for (t, _) in staged[(i + 1)...] { unlink(t.path) }
                throw HarnessError("\(error); the results in '\(dir.path)' are incomplete (their manifest no longer matches them): run again")
            }
        }
        let names = Set(all.map(\.name))
        for old in previous where !names.contains(old) && !old.contains("/") { unlink(dir.appendingPathComponent(old).path) }
        FileSystem.syncDirectory(dir.path)
    }
}

/// `manifest.json` beside every result (NUMERICS.md §10).
public struct Manifest: Encodable {
    public var tool = "hessian-harness"
    public var toolVersion = ToolInfo.version
    public var gitCommit = Manifest.gitCommit()
    public var command: [String]
    public var seeds: [String: UInt64]
    public var parameters: [String: String]
    public var mpfrVersion = MPFRInfo.mpfrVersion
    public var gmpVersion = MPFRInfo.gmpVersion
    public var openblasConfig = ToolInfo.openBLASConfig
    /// OpenBLAS's kernel set: it fixes the summation order inside BLAS products.
    public var blasCore = BLASRuntime.coreName
    /// Whether freed memory is kept for reuse (``ProcessAllocator``): it sets the cost of
    /// every large allocation, hence the timings.
    public var allocator = ProcessAllocator.description
    public var cores = ProcessInfo.processInfo.activeProcessorCount
    public var blasThreads = ToolInfo.blasThreads
    public var startTime: String
    public var endTime: String
    /// Experiment runs: the file, its SHA-256 and the study (absent otherwise).
    public var experimentFile: String?
    public var experimentSHA256: String?
    public var study: String?
    /// The training runs of trained models (`…,train=`) this process performed: model, seeds,
    /// optimizer and loss curve (absent when none).
    public var training: [TrainingRecord]? = { let r = TrainingRecord.all(); return r.isEmpty ? nil : r }()
    /// The other files of the results set, each with its SHA-256 (set by ``OutputBundle/write(to:lock:)``).
    public var files: [String: String]?
    /// The files the run read (user data, parameter files, checkpoints, text), each with
    /// its SHA-256 (absent when it read none): the parameters' `model` spec's files, or
    /// an experiment's.
    public var inputFiles: [String: String]?

    enum CodingKeys: String, CodingKey {
        case tool, toolVersion = "tool_version", gitCommit = "git_commit", command, seeds, parameters
        case mpfrVersion = "mpfr_version", gmpVersion = "gmp_version", openblasConfig = "openblas_config", blasCore = "blas_core"
        case allocator, cores, blasThreads = "blas_threads", startTime = "start_time", endTime = "end_time"
        case experimentFile = "experiment_file", experimentSHA256 = "experiment_sha256", study, training, files
        case inputFiles = "input_files"
    }

    /// `inputFiles`: the files the run read with their SHA-256, when the caller has hashed
    /// them already (a sweep's journal, hvp's model.json); by default those of the `model`
    /// parameter's spec are hashed here.
    public init(command: [String], seeds: [String: UInt64], parameters: [String: String], start: Date, end: Date,
                inputFiles: [String: String]? = nil) {
        self.command = command; self.seeds = seeds; self.parameters = parameters
        startTime = Manifest.iso(start); endTime = Manifest.iso(end)
        let inputs = inputFiles ?? parameters["model"].map { Manifest.hashes(ModelSpec.inputFiles($0)) } ?? [:]
        self.inputFiles = inputs.isEmpty ? nil : inputs
    }

    /// path → SHA-256 of each readable file. The run has just read them.
    public static func hashes(_ files: [String]) -> [String: String] {
        var h: [String: String] = [:]
        for f in files { if let d = FileManager.default.contents(atPath: f) { h[f] = SHA256.hex(d) } }
        return h
    }

    public func json() throws -> Data { try prettyJSON(self) }

    static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    /// The commit the tool was built from, embedded at build time (Plugins/BuildInfo):
    /// `-dirty` when built with uncommitted changes, "unknown" when not built from a git
    /// checkout. `HH_GIT_COMMIT` overrides it (a packager building from a tarball).
    /// Not the repository of the working directory: results are about the tool's code.
    static func gitCommit() -> String {
        ProcessInfo.processInfo.environment["HH_GIT_COMMIT"] ?? BuildInfo.gitCommit
    }
}
