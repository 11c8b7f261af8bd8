import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An outside process that computes the loss and gradient (and optionally an exact
/// HVP) of the user's own model in the user's own framework, spoken to over its
/// standard input and output (docs/ORACLE.md, protocol version 1).
///
/// Each message is one line of JSON, followed, when the line says `"values": N`, by
/// N little-endian binary64 numbers. The oracle speaks first (the handshake); the
/// harness then asks for `parameters`, `gradient` or `hvp` and ends with `bye`.
/// Every way an oracle can fail — it exits or crashes, it does not answer within the
/// timeout, it answers with the wrong count, a NaN, or text that is not the protocol —
/// is an ``OracleError`` naming the command and what it did; the process is then
/// killed. One request at a time: the calls are serialized by a lock, so threads of
/// one run may share an oracle.
public final class ExternalOracle: @unchecked Sendable {
    public static let protocolName = "hessian-harness-oracle"
    public static let protocolVersion = 1
    /// The longest JSON line accepted (a layout of many tensors fits easily).
    static let maxLine = 16 << 20

    /// What the oracle says of itself in its handshake.
    public struct Hello: Sendable {
        public var name: String
        public var dtype: String
        public var parameterCount: Int
        public var layout: ParameterLayout
        public var servesHVP: Bool
    }

    public let command: String
    public let timeout: Double
    public private(set) var hello = Hello(name: "", dtype: "", parameterCount: 0, layout: ParameterLayout(), servesHVP: false)
    private let pid: pid_t
    private let input: Int32, output: Int32
    /// The child has not been reaped; its wait status once it has.
    private var running = false
    private var status: Int32 = 0
    private let lock = NSLock()
    private var failed: OracleError?
    private var buffer: [UInt8] = []

    /// The timeout of one request, seconds: `HH_ORACLE_TIMEOUT` (`--oracle-timeout`), else 600.
    public static var defaultTimeout: Double {
        if let s = ProcessInfo.processInfo.environment["HH_ORACLE_TIMEOUT"], let t = Double(s), t > 0, t.isFinite { return t }
        return 600
    }

    /// Starts `command` with `/bin/sh -c` and reads its handshake.
    public init(command: String, timeout: Double = ExternalOracle.defaultTimeout) throws {
        guard !command.allSatisfy(\.isWhitespace) else { throw OracleError(command: command, "external: needs a command (external:CMD)") }
        guard timeout > 0, timeout.isFinite else { throw OracleError(command: command, "the timeout must be a finite number of seconds > 0") }
        signal(SIGPIPE, SIG_IGN)          // a dead oracle's stdin is an error to report, not a signal that kills us
        self.command = command
        self.timeout = timeout
        // posix_spawn rather than Foundation's Process: the oracle gets a process group of its own, so that
        // a timeout kills everything the command started (a shell's children too), and no descriptor but
        // the two pipes (and standard error) is inherited.
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        func pipeCloseOnExec(_ fds: inout [Int32]) -> Bool {
            guard pipe(&fds) == 0 else { return false }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return true
        }
        guard pipeCloseOnExec(&toChild) else { throw OracleError(command: command, "could not be started: no pipe (\(String(cString: strerror(errno))))") }
        guard pipeCloseOnExec(&fromChild) else {
            close(toChild[0]); close(toChild[1])
            throw OracleError(command: command, "could not be started: no pipe (\(String(cString: strerror(errno))))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        // A simple command is exec'ed by the shell, so that its exit status or signal is the oracle's own.
        let simple = !command.contains(where: { ";&|<>()`$\n\\'\"*?[]{}~#=".contains($0) })
        let args = ["/bin/sh", "-c", simple ? "exec " + command : command]
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/sh", &actions, &attributes, &cArgs, environ)
        for a in cArgs { free(a) }
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(toChild[0]); close(fromChild[1])
        guard rc == 0 else {
            close(toChild[1]); close(fromChild[0])
            throw OracleError(command: command, "could not be started: \(String(cString: strerror(rc)))")
        }
        pid = child
        input = toChild[1]
        output = fromChild[0]
        _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) | O_NONBLOCK)
        running = true
        do { hello = try Self.parseHello(try readLine(what: "its handshake")) } catch let e as OracleProtocolError {
            stop(kill: true)
            throw OracleError(command: command, e.message)
        }
    }
    deinit { stop(kill: false) }

    /// The parameters θ the oracle's model holds (fp64 carriers of its values).
    public func parameters() throws -> [Double] {
        try request(["op": "parameters"], payload: [], expect: hello.parameterCount, what: "parameters").values
    }

    /// Loss and gradient at θ.
    public func gradient(_ theta: [Double]) throws -> (loss: Double, gradient: [Double]) {
        let r = try request(["op": "gradient"], payload: theta, expect: hello.parameterCount, what: "gradient")
        return (r.loss, r.values)
    }

    /// Loss, gradient and the exact HVP (as the oracle computes it, e.g. fp64 forward-over-reverse) at θ along v.
    public func hvp(_ theta: [Double], _ v: [Double]) throws -> (loss: Double, gradient: [Double], hv: [Double]) {
        guard hello.servesHVP else { throw OracleError(command: command, "serves no exact HVP (its handshake says \"hvp\": false)") }
        let r = try request(["op": "hvp"], payload: theta + v, expect: 2 * hello.parameterCount, what: "hvp")
        let n = hello.parameterCount
        return (r.loss, Array(r.values[..<n]), Array(r.values[n...]))
    }

    // MARK: the protocol

    static func parseHello(_ line: [UInt8]) throws -> Hello {
        guard let any = try? JSONSerialization.jsonObject(with: Data(line)), let d = any as? [String: Any] else {
            throw OracleProtocolError("its handshake is not a JSON object: \(preview(line))")
        }
        guard d["protocol"] as? String == protocolName else {
            throw OracleProtocolError("its handshake does not name the protocol \"\(protocolName)\" (got \(d["protocol"].map { "\($0)" } ?? "none"))")
        }
        guard let version = d["version"] as? Int, version == protocolVersion else {
            throw OracleProtocolError("it speaks protocol version \(d["version"].map { "\($0)" } ?? "none"); this harness speaks version \(protocolVersion)")
        }
        guard let n = d["parameters"] as? Int, n >= 1, n <= 1 << 40 else {
            throw OracleProtocolError("its handshake needs \"parameters\": a count ≥ 1 (got \(d["parameters"].map { "\($0)" } ?? "none"))")
        }
        var layout = ParameterLayout()
        if let tensors = d["layout"] as? [Any] {
            var names = Set<String>()
            for (i, t) in tensors.enumerated() {
                guard let t = t as? [String: Any], let name = t["name"] as? String, !name.isEmpty,
                      let shape = t["shape"] as? [Int], shape.allSatisfy({ $0 >= 1 && $0 <= 1 << 40 }) else {
                    throw OracleProtocolError("layout entry \(i) needs \"name\" (a string) and \"shape\" (positive integers)")
                }
                guard names.insert(name).inserted else { throw OracleProtocolError("layout names the tensor '\(name)' twice") }
                var count = 1
                for s in shape {
                    let (c, o) = count.multipliedReportingOverflow(by: s)
                    guard !o, c <= 1 << 40 else { throw OracleProtocolError("layout tensor '\(name)' is too large (shape \(shape))") }
                    count = c
                }
                guard layout.count + count <= n else { throw OracleProtocolError("layout tensors hold more than the \(n) parameters of the handshake") }
                layout.add(name, shape: shape, block: (t["block"] as? String) ?? name)
            }
            guard layout.count == n else {
                throw OracleProtocolError("layout tensors hold \(layout.count) values but the handshake says \(n) parameters")
            }
        } else {
            layout.add("theta", shape: [n], block: "theta")
        }
        return Hello(name: (d["name"] as? String) ?? "external", dtype: (d["dtype"] as? String) ?? "unknown", parameterCount: n,
                     layout: layout, servesHVP: (d["hvp"] as? Bool) ?? false)
    }

    struct Reply { var loss: Double; var values: [Double] }

    private func request(_ header: [String: Any], payload: [Double], expect: Int, what: String) throws -> Reply {
        lock.lock(); defer { lock.unlock() }
        if let failed { throw failed }
        do {
            var h = header
            if !payload.isEmpty { h["values"] = payload.count }
            var bytes = try JSONSerialization.data(withJSONObject: h, options: [.sortedKeys])
            bytes.append(UInt8(ascii: "\n"))
            var out = [UInt8](bytes)
            out.reserveCapacity(out.count + 8 * payload.count)
            for x in payload { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            try write(out, what: "the \(what) request")
            let line = try readLine(what: "its reply to the \(what) request")
            guard let any = try? JSONSerialization.jsonObject(with: Data(line)), let d = any as? [String: Any] else {
                throw OracleProtocolError("its reply to the \(what) request is not a JSON object: \(Self.preview(line))")
            }
            if d["ok"] as? Bool == false {
                throw OracleProtocolError("reported an error for the \(what) request: \((d["error"] as? String) ?? "(no message)")")
            }
            guard d["ok"] as? Bool == true else { throw OracleProtocolError("its reply to the \(what) request has no \"ok\": true") }
            guard let count = d["values"] as? Int, count == expect else {
                throw OracleProtocolError("its reply to the \(what) request carries \(d["values"].map { "\($0)" } ?? "no") values; \(expect) were expected")
            }
            var loss = Double.nan
            if what != "parameters" {
                guard let l = (d["loss"] as? NSNumber)?.doubleValue, l.isFinite else {
                    throw OracleProtocolError("its reply to the \(what) request needs a finite \"loss\" (got \(d["loss"].map { "\($0)" } ?? "none"))")
                }
                loss = l
            }
            let raw = try read(8 * count, what: "the \(count) values of its \(what) reply")
            let values = [Double](unsafeUninitializedCapacity: count) { v, c in
                raw.withUnsafeBytes { b in
                    for i in 0..<count { v[i] = Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
                }
                c = count
            }
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw OracleProtocolError("its \(what) reply holds \(values[i]) at element \(i)")
            }
            return Reply(loss: loss, values: values)
        } catch let e as OracleProtocolError {
            let err = OracleError(command: command, e.message)
            failed = err
            stop(kill: true)
            throw err
        }
    }

    private func write(_ bytes: [UInt8], what: String) throws {
        var offset = 0
        let deadline = Date().addingTimeInterval(timeout)
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(input, $0.baseAddress! + offset, bytes.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EPIPE { throw OracleProtocolError(exitDescription(reading: "\(what) could not be sent")) }
            if n < 0 && errno != EAGAIN && errno != EINTR { throw OracleProtocolError("\(what) could not be sent: \(String(cString: strerror(errno)))") }
            try wait(fd: input, events: Int16(POLLOUT), deadline: deadline, what: "take \(what)")
        }
    }

    private func wait(fd: Int32, events: Int16, deadline: Date, what: String) throws {
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                throw OracleProtocolError("did not \(what) within \(Self.seconds(timeout)) s (the timeout; --oracle-timeout SECONDS or HH_ORACLE_TIMEOUT sets it)")
            }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw OracleProtocolError("poll failed: \(String(cString: strerror(errno)))") }
        }
    }

    /// Reads until `count` bytes are buffered (end of file: the oracle exited).
    private func fill(_ count: Int, deadline: Date, what: String, line: Bool) throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while line ? !buffer.contains(10) : buffer.count < count {
            if line && buffer.count > Self.maxLine { throw OracleProtocolError("\(what) is a line longer than \(Self.maxLine) bytes") }
            try wait(fd: output, events: Int16(POLLIN), deadline: deadline, what: "send \(what)")
            let n = chunk.withUnsafeMutableBytes { Glibc.read(output, $0.baseAddress, $0.count) }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]); continue }
            if n == 0 { throw OracleProtocolError(exitDescription(reading: "it closed its output before \(what)")) }
            if errno != EINTR && errno != EAGAIN { throw OracleProtocolError("reading \(what) failed: \(String(cString: strerror(errno)))") }
        }
    }

    private func readLine(what: String) throws -> [UInt8] {
        try fill(0, deadline: Date().addingTimeInterval(timeout), what: what, line: true)
        let end = buffer.firstIndex(of: 10)!
        let line = Array(buffer[..<end])
        buffer.removeSubrange(...end)
        return line
    }

    private func read(_ count: Int, what: String) throws -> [UInt8] {
        try fill(count, deadline: Date().addingTimeInterval(timeout), what: what, line: false)
        let bytes = Array(buffer[..<count])
        buffer.removeSubrange(..<count)
        return bytes
    }

    /// Reaps the child if it has exited (waiting up to `seconds`); true when it has.
    private func reap(within seconds: Double) -> Bool {
        guard running else { return true }
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) { status = st; running = false; return true }
            if Date() >= deadline { return false }
            usleep(5_000)
        } while true
    }

    /// "it exited with status 3" / "it was killed by signal 11", after waiting briefly for it.
    private func exitDescription(reading what: String) -> String {
        guard reap(within: 2) else { return what }
        let signal = status & 0x7f
        if signal == 0 {
            let code = (status >> 8) & 0xff
            return "\(what): it exited with status \(code)" + (code > 128 && code < 160 ? " (a shell's way of saying its command was killed by signal \(code - 128))" : "")
        }
        return "\(what): it was killed by signal \(signal)"
    }

    /// Ends the conversation: `bye`, closed pipes and a short wait, then SIGKILL to the oracle's process group.
    private func stop(kill hard: Bool) {
        if !closed && !hard && failed == nil, let bye = try? JSONSerialization.data(withJSONObject: ["op": "bye"]) {
            var b = [UInt8](bye); b.append(10)
            _ = b.withUnsafeBytes { Glibc.write(input, $0.baseAddress, $0.count) }
        }
        if !closed { close(input); close(output); closed = true }
        if running && !reap(within: hard ? 0 : 5) {
            Glibc.kill(-pid, SIGKILL)
            Glibc.kill(pid, SIGKILL)
            _ = reap(within: 5)
        }
    }
    private var closed = false

    static func preview(_ line: [UInt8]) -> String {
        let s = String(decoding: line.prefix(80), as: UTF8.self).map { $0.isASCII && !$0.isWhitespace || $0 == " " ? String($0) : "?" }.joined()
        return "'\(s)\(line.count > 80 ? "…" : "")'"
    }

    static func seconds(_ t: Double) -> String { t == t.rounded() ? "\(Int(t))" : "\(t)" }
}

struct OracleProtocolError: Error { var message: String; init(_ m: String) { message = m } }

/// An external oracle that failed: what it did, and the command.
public struct OracleError: Error, CustomStringConvertible, Equatable {
    public var command: String
    public var message: String
    public init(command: String, _ message: String) { self.command = command; self.message = message }
    public var description: String { "external oracle '\(command)': \(message)" }
}
