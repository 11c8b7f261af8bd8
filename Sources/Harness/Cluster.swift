import Collectives
import Curvature

/// The job this process belongs to: `nil` for an ordinary single-process run, or
/// this process's communicator when it is one rank of a multi-process job (set once
/// by the MPI executable before any command runs, read-only afterwards).
///
/// Commands that support a job (`hvp`, `slq --model`, `run`) then run SPMD: every rank
/// executes the same command with the same arguments, collectives exchange shards,
/// and rank 0 alone writes the results.
public enum Cluster {
    nonisolated(unsafe) public static var world: (any Communicator)? = nil
    /// This process's rank (0 outside a job).
    public static var rank: Int { world?.rank ?? 0 }
    public static var isRoot: Bool { rank == 0 }
    /// The number of ranks (1 outside a job).
    public static var size: Int { world?.size ?? 1 }

    /// The shard count of a sharded command: `--shards` outside a job; in a job one
    /// shard per rank, so `--shards` must be omitted (1) or equal the job's size.
    public static func shards(requested: Int) throws -> Int {
        guard requested >= 1 && requested <= 1024 else { throw HarnessError("--shards must be in 1...1024 (got \(requested))") }
        if let w = world, requested != 1 && requested != w.size {
            throw HarnessError("--shards \(requested) differs from the job's \(w.size) ranks (under MPI every rank holds one shard; omit --shards)")
        }
        return world?.size ?? requested
    }
}

/// An error raised on one rank of a job only (a failing configuration, say): every
/// rank prints it, prefixed with its rank, whereas errors every rank raises alike
/// (bad input) are printed once, by rank 0.
public struct RankError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { Cluster.size > 1 ? "rank \(Cluster.rank): \(message)" : message }
}

/// A rank stops because another rank failed and printed why: exits non-zero, prints nothing.
public struct PeerFailure: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "stopped: another rank failed" }
}
