import Foundation

/// How results reach the disk: plain-words file-system errors, one writer per
/// folder (``FolderLock``), and files written atomically (``AtomicFile``).
///
/// Written on POSIX calls rather than `FileManager`/`FileHandle` so that every
/// failure carries its `errno` and can be said in plain words ("no space left on
/// device while writing …") instead of a Foundation error domain and code.
public struct FileSystemError: Error, CustomStringConvertible {
    public var errno: Int32
    public var operation: String
    public var path: String
    public var description: String {
        let what: String
        switch errno {
        case ENOSPC, EDQUOT: what = "no space left on device"
        case EACCES, EPERM: what = "permission denied"
        case EROFS: what = "the file system is read-only"
        case ENAMETOOLONG: what = "the name is too long"
        case ENOTDIR: what = "a parent of it is a file, not a folder"
        case EISDIR: what = "it is a folder"
        case ENOENT: what = "no such file or folder"
        case EMFILE, ENFILE: what = "too many open files"
        case EFBIG: what = "the file would exceed the file-size limit (ulimit -f)"
        default: what = String(cString: strerror(errno))
        }
        return "\(what) while \(operation) '\(path)'"
    }
    public init(_ errno: Int32, _ operation: String, _ path: String) {
        self.errno = errno; self.operation = operation; self.path = path
    }
}

public enum FileSystem {
    /// `mkdir -p`: creates `path` and its missing parents; the error names the first that failed.
    public static func makeDirectories(_ path: String) throws {
        guard !path.isEmpty else { throw HarnessError("empty output path") }
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw HarnessError("output path '\(path)' exists and is not a folder") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FileSystemError(errno, "creating the folder", path) }
    }

    /// Writes `data` to a new file at `path` (exclusive create) and, with `sync`, flushes it to the disk.
    /// Test hook: `HH_TEST_FAIL_WRITE=NAME` fails the write of any file whose path
    /// contains NAME with ENOSPC, as a full disk would (a final table can then fail
    /// while the journal, written earlier, did not).
    static let failWrite: String? = ProcessInfo.processInfo.environment["HH_TEST_FAIL_WRITE"]

    static func writeNew(_ data: Data, to path: String, sync: Bool = true) throws {
        if let f = failWrite, !f.isEmpty, path.contains(f) { throw FileSystemError(ENOSPC, "writing", path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystemError(errno, "creating", path) }
        var failure: FileSystemError? = nil
        data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var off = 0
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n < 0 { if errno == EINTR { continue }; failure = FileSystemError(errno, "writing", path); return }
                off += n
            }
        }
        if failure == nil && sync && fsync(fd) != 0 { failure = FileSystemError(errno, "writing", path) }
        if close(fd) != 0 && failure == nil { failure = FileSystemError(errno, "writing", path) }
        if let failure { unlink(path); throw failure }
    }

    /// Flushes a folder's entries (renames) to the disk; best effort.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

/// One writer per results folder: an advisory `flock` on `DIR/.lock`, held for a
/// whole run, the holder's PID written inside so a refused run can name it.
///
/// The lock file is removed when the lock is released. A process that opened it
/// just before the removal would lock a file no longer in the folder, so after
/// locking it checks that the path still names the file it locked, and retries
/// otherwise. `flock` is released by the kernel when the holder dies, even by
/// `kill -9`, so a stale `.lock` never blocks a later run. In an MPI job rank 0
/// holds the lock for the job.
public final class FolderLock: @unchecked Sendable {
    public static let fileName = ".lock"
    let fd: Int32
    let path: String
    private var released = false

    private init(fd: Int32, path: String) { self.fd = fd; self.path = path }

    /// Locks `dir` (which must exist) or throws at once, naming the holder.
    public static func acquire(_ dir: URL) throws -> FolderLock {
        let path = dir.appendingPathComponent(fileName).path
        for _ in 0..<100 {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw FileSystemError(errno, "creating the lock file", path) }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                var buf = [UInt8](repeating: 0, count: 32)
                let n = pread(fd, &buf, 31, 0)
                close(fd)
                guard e == EWOULDBLOCK else { throw FileSystemError(e, "locking", path) }
                let pid = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
                throw HarnessError("'\(dir.path)' is in use by another hessian-harness run (\(pid.isEmpty ? "PID unknown" : "PID \(pid)")); wait for it to finish, or stop it, and run again")
            }
            var a = stat(), b = stat()
            if fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev {
                close(fd)      // removed by its previous holder after we opened it: try again
                continue
            }
            let text = Array("\(getpid())\n".utf8)
            ftruncate(fd, 0)
            _ = pwrite(fd, text, text.count, 0)
            return FolderLock(fd: fd, path: path)
        }
        throw HarnessError("could not lock '\(dir.path)': its lock file keeps being replaced")
    }

    /// Removes the lock file and releases the lock (idempotent).
    public func release() {
        guard !released else { return }
        released = true
        unlink(path)
        close(fd)
    }

    deinit { release() }
}

public enum AtomicFile {
    /// Writes `data` to a temporary sibling, fsyncs it (unless `sync` is false), and
    /// renames it into place. Without the fsync a reader never sees a partial file
    /// while the system runs (a killed writer included); only a crash of the system
    /// itself can leave the renamed file empty or short, which the sweep's journal,
    /// the one unsynced writer, detects and recomputes.
    public static func write(_ data: Data, to url: URL, sync: Bool = true) throws {
        let tmp = temporary(for: url)
        unlink(tmp.path)
        try FileSystem.writeNew(data, to: tmp.path, sync: sync)
        try commit(tmp, to: url)
    }

    /// The temporary sibling ``write(_:to:)`` uses for `url` (".NAME.tmp-PID").
    static func temporary(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent)\(temporaryMark)\(getpid())")
    }

    /// Renames a written temporary file over its final name.
    static func commit(_ tmp: URL, to url: URL) throws {
        if rename(tmp.path, url.path) != 0 {
            let e = errno
            unlink(tmp.path)
            throw FileSystemError(e, "renaming into place", url.path)
        }
    }

    static let temporaryMark = ".tmp-"

    /// Whether `fileName` is a temporary sibling of ``write(_:to:)`` (".NAME.tmp-PID"),
    /// such as a writer killed before its rename leaves behind.
    public static func isTemporary(_ fileName: String) -> Bool {
        fileName.hasPrefix(".") && fileName.contains(temporaryMark)
    }

    /// Removes the temporary files left in `dir` by writers that died (call it holding
    /// the folder's lock: then no live writer has one there).
    static func removeLeftovers(in dir: URL) {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where isTemporary(f) {
            unlink(dir.appendingPathComponent(f).path)
        }
    }
}

/// Reading a results folder: trust only a complete set.
public enum ResultsFolder {
    /// The files the folder's manifest lists (nil: no manifest, or one without a file list).
    static func listedFiles(_ dir: URL) -> [String]? {
        guard let d = FileManager.default.contents(atPath: dir.appendingPathComponent("manifest.json").path),
              let m = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any],
              let files = m["files"] as? [String: String] else { return nil }
        return files.keys.sorted()
    }

    /// Checks that every file the folder's manifest lists is there with the SHA-256 it
    /// lists. A manifest without a file list (results written before it existed) is
    /// accepted as it is; a missing manifest or a mismatch is an error that says what.
    public static func verify(_ dir: URL) throws {
        let mpath = dir.appendingPathComponent("manifest.json").path
        guard let d = FileManager.default.contents(atPath: mpath) else {
            throw HarnessError("'\(dir.path)' holds no complete results: no manifest.json (an interrupted run leaves none; run it again)")
        }
        guard let m = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] else { throw HarnessError("\(mpath): malformed JSON") }
        guard let files = m["files"] else { return }
        guard let list = files as? [String: String] else { throw HarnessError("\(mpath): 'files' is not a table of names and SHA-256 digests") }
        for (name, sha) in list.sorted(by: { $0.key < $1.key }) {
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) else {
                throw HarnessError("the results in '\(dir.path)' are incomplete: \(name), listed by manifest.json, is missing")
            }
            guard SHA256.hex(data) == sha else {
                throw HarnessError("the results in '\(dir.path)' are not the set manifest.json describes: \(name) differs (an interrupted write, or edited afterwards); run again")
            }
        }
    }
}
