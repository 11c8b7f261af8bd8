import Foundation
import Scalars
import LinearAlgebra

/// An error of a collective or of starting a world of ranks (exit status 2 in the CLI).
public struct CollectivesError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The order in which a reduction adds the ranks' contributions.
public enum ReductionOrder: String, Sendable, CaseIterable {
    /// ((c₀ + c₁) + c₂) + … in rank order.
    case sequential
    /// Pairwise tree over ranks: (c₀ + c₁) + (c₂ + c₃), …
    case tree
}

/// Collective communication as FSDP uses it, written SPMD-style: every rank calls
/// the same collective with its own data, and each call returns that rank's result.
/// Values travel as Doubles, an exact carrier for every format inside binary64;
/// reductions add in `format` (one rounding per addition) in `order`, so results are
/// deterministic and independent of timing. A multi-process backend (MPI) implements
/// the same protocol; callers do not change.
public protocol Communicator: Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Concatenation of every rank's `local` (all of equal length), in rank order.
    func allGather(_ local: [Double]) -> [Double]
    /// Elementwise sum over ranks of `full` (length size·m), scattered: rank r gets
    /// elements r·m ..< (r+1)·m of the sum.
    func reduceScatter(_ full: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double]
    /// Elementwise sum over ranks, returned to every rank.
    func allReduce(_ x: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double]
    /// ``allGather(_:)-([Double])`` of binary32 values, which travel as binary32 (half
    /// the bytes): what the fp32 sharded FD-HVP gathers its perturbed parameters with.
    func allGather(_ local: [Float]) -> [Float]
    /// ``reduceScatter(_:format:order:)`` in `.fp32` of binary32 values travelling as
    /// binary32: the same sums (each addition the hardware's binary32 addition, correctly
    /// rounded to nearest, as `FormatArithmetic.fp32.add`), half the bytes.
    func reduceScatter(_ full: [Float], order: ReductionOrder) -> [Float]
}

extension Communicator {
    /// Through the binary64 collective (exact on binary32 values): for backends without
    /// binary32 transport of their own.
    public func allGather(_ local: [Float]) -> [Float] { allGather(local.map { Double($0) }).map { Float($0) } }

    /// Through the binary64 collective in `.fp32` (exact carriers, the same sums).
    public func reduceScatter(_ full: [Float], order: ReductionOrder) -> [Float] {
        reduceScatter(full.map { Double($0) }, format: FormatArithmetic(format: .fp32), order: order).map { Float($0) }
    }

    /// Sum of the ranks' scalars.
    public func allReduce(_ x: Double, format: FormatArithmetic, order: ReductionOrder) -> Double {
        allReduce([x], format: format, order: order)[0]
    }
}

/// Reduces contributions (indexed by rank) in `format` and `order`: the one
/// definition of a reduction's result, shared by every backend (in-process and MPI
/// gather the contributions and call this), so results never depend on the transport.
@inlinable
public func reduce(_ parts: [[Double]], _ format: FormatArithmetic, _ order: ReductionOrder) -> [Double] {
    switch order {
    case .sequential:
        var acc = parts[0]
        for p in parts.dropFirst() { for i in acc.indices { acc[i] = format.add(acc[i], p[i]) } }
        return acc
    case .tree:
        var level = parts
        while level.count > 1 {
            var next: [[Double]] = []
            var i = 0
            while i < level.count {
                if i + 1 < level.count { next.append(zip(level[i], level[i + 1]).map { format.add($0, $1) }) }
                else { next.append(level[i]) }
                i += 2
            }
            level = next
        }
        return level[0]
    }
}

/// ``reduce(_:_:_:)`` in `.fp32` of binary32 contributions, given as `m` values at
/// `m·offset` of each rank's buffer (so that no contribution is copied out first): the
/// same order, each addition the hardware's binary32 addition (correctly rounded to
/// nearest, as `FormatArithmetic.fp32.add`).
@inlinable
public func reduce(_ parts: [UnsafeBufferPointer<Float>], _ order: ReductionOrder) -> [Float] {
    let m = parts[0].count
    func sum(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> [Float] {
        [Float](unsafeUninitializedCapacity: m) { out, count in
            for i in 0..<m { out[i] = a[i] + b[i] }
            count = m
        }
    }
    switch order {
    case .sequential:
        var acc = Array(parts[0])
        acc.withUnsafeMutableBufferPointer { acc in
            for p in parts.dropFirst() { for i in 0..<m { acc[i] = acc[i] + p[i] } }
        }
        return acc
    case .tree:
        guard parts.count > 1 else { return Array(parts[0]) }
        // The first level from the ranks' buffers, the next ones from its results.
        var level: [[Float]] = stride(from: 0, to: parts.count, by: 2).map { i in
            i + 1 < parts.count ? sum(parts[i], parts[i + 1]) : Array(parts[i])
        }
        while level.count > 1 {
            var next: [[Float]] = []
            var i = 0
            while i < level.count {
                if i + 1 < level.count {
                    next.append(level[i].withUnsafeBufferPointer { a in level[i + 1].withUnsafeBufferPointer { b in sum(a, b) } })
                } else { next.append(level[i]) }
                i += 2
            }
            level = next
        }
        return level[0]
    }
}

/// The chunk of `m` values at `offset·m` of each of `buffers`, reduced in binary32 (``reduce(_:_:)-([UnsafeBufferPointer<Float>],_)``).
@inlinable
public func reduceChunk(_ buffers: [[Float]], offset r: Int, count m: Int, _ order: ReductionOrder) -> [Float] {
    func with(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) -> [Float] {
        if i == buffers.count { return reduce(acc, order) }
        return buffers[i].withUnsafeBufferPointer { with(i + 1, acc + [UnsafeBufferPointer(rebasing: $0[(r * m)..<((r + 1) * m)])]) }
    }
    return with(0, [])
}

/// Runs SPMD bodies: on S in-process ranks (threads), or, when this process is one
/// rank of a real job (`world`, e.g. MPI), as that rank.
///
/// Stochastic rounding: rank r's generator starts from the caller's state for r = 0
/// and from a seed derived from it and r otherwise, in both cases, so a sharded
/// computation with stochastic rounding is reproducible from the caller's seed and
/// identical in process and under MPI.
public enum SPMD {
    /// Runs `body` on every rank; returns rank 0's result in process and this rank's
    /// result under `world`. Bodies that end in a collective (an all-gather of their
    /// shards) return the same value on every rank.
    public static func run<R: Sendable>(shards: Int, world: (any Communicator)?,
                                        _ body: @escaping @Sendable (any Communicator) throws -> R) throws -> R {
        let base = StochasticRounding.currentState
        if let world {
            precondition(world.size == shards, "SPMD.run: \(shards) shards on a world of \(world.size) ranks")
            return try StochasticRounding.withSeed(rankSeed(base, world.rank)) { try body(world) }
        }
        return try InProcessWorld(size: shards).run { comm in
            try StochasticRounding.withSeed(rankSeed(base, comm.rank)) { try body(comm) }
        }[0]
    }

    /// Rank r's stochastic-rounding seed from the caller's generator state.
    public static func rankSeed(_ base: UInt64, _ rank: Int) -> UInt64 {
        guard rank > 0 else { return base }
        var g = SplitMix64(seed: base ^ (UInt64(rank) &* 0x9E37_79B9_7F4A_7C15))
        return g.next()
    }
}

/// In-process SPMD world: `run` starts one thread per rank; collectives exchange
/// through shared slots between two barriers.
public final class InProcessWorld: @unchecked Sendable {
    public let size: Int
    private var slots: [[Double]]
    private var floatSlots: [[Float]]
    private let lock = NSCondition()
    private var arrived = 0
    private var generation = 0

    public init(size: Int) {
        precondition(size >= 1)
        self.size = size
        slots = Array(repeating: [], count: size)
        floatSlots = Array(repeating: [], count: size)
    }

    /// Runs `body` on every rank concurrently; returns the ranks' results in rank order.
    public func run<R: Sendable>(_ body: @escaping @Sendable (any Communicator) throws -> R) throws -> [R] {
        let results = ResultBox<R>(size)
        // All ranks or none: a rank that never starts would leave the others waiting
        // at their first collective.
        do {
            try Threads.run(size, allOrNone: true) { r in
                do { results.set(r, .success(try body(RankCommunicator(world: self, rank: r)))) } catch { results.set(r, .failure(error)) }
            }
        } catch { throw CollectivesError("in-process world of \(size) ranks: \(error); lower --shards") }
        return try results.values()
    }

    /// Deposits `data` for `rank`, waits for all ranks, returns a snapshot of all
    /// slots, then waits again so slots can be reused by the next collective.
    func exchange(_ rank: Int, _ data: [Double]) -> [[Double]] { exchange(rank, data, \.slots) }

    /// ``exchange(_:_:)-([Double])`` of binary32 values.
    func exchange(_ rank: Int, _ data: [Float]) -> [[Float]] { exchange(rank, data, \.floatSlots) }

    private func exchange<E>(_ rank: Int, _ data: [E], _ slots: ReferenceWritableKeyPath<InProcessWorld, [[E]]>) -> [[E]] {
        lock.lock()
        self[keyPath: slots][rank] = data
        barrier()
        let snapshot = self[keyPath: slots]
        barrier()
        lock.unlock()
        return snapshot
    }

    /// Must be called with `lock` held.
    private func barrier() {
        let gen = generation
        arrived += 1
        if arrived == size {
            arrived = 0; generation += 1
            lock.broadcast()
        } else {
            while gen == generation { lock.wait() }
        }
    }

    final class ResultBox<R>: @unchecked Sendable {
        private var items: [Result<R, Error>?]
        private let l = NSLock()
        init(_ n: Int) { items = Array(repeating: nil, count: n) }
        func set(_ i: Int, _ r: Result<R, Error>) { l.lock(); items[i] = r; l.unlock() }
        func values() throws -> [R] { try items.map { try $0!.get() } }
    }
}

struct RankCommunicator: Communicator {
    let world: InProcessWorld
    let rank: Int
    var size: Int { world.size }

    func allGather(_ local: [Double]) -> [Double] { world.exchange(rank, local).flatMap { $0 } }

    func reduceScatter(_ full: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
        precondition(full.count % size == 0, "reduceScatter: length \(full.count) not divisible by \(size) ranks")
        let m = full.count / size
        let parts = world.exchange(rank, full).map { Array($0[(rank * m)..<((rank + 1) * m)]) }
        return reduce(parts, format, order)
    }

    func allReduce(_ x: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
        reduce(world.exchange(rank, x), format, order)
    }

    func allGather(_ local: [Float]) -> [Float] {
        let parts = world.exchange(rank, local)
        return size == 1 ? parts[0] : parts.flatMap { $0 }
    }

    func reduceScatter(_ full: [Float], order: ReductionOrder) -> [Float] {
        precondition(full.count % size == 0, "reduceScatter: length \(full.count) not divisible by \(size) ranks")
        let m = full.count / size
        let all = world.exchange(rank, full)
        if size == 1 { return all[0] }
        return reduceChunk(all, offset: rank, count: m, order)
    }
}

/// The flat parameter vector split into S equal shards as FSDP does (the last one
/// padded with zeros).
public struct ShardLayout: Sendable, Equatable {
    public let count: Int
    public let shards: Int
    public var shardSize: Int { (count + shards - 1) / shards }
    public var paddedCount: Int { shardSize * shards }
    public init(count: Int, shards: Int) { precondition(shards >= 1); self.count = count; self.shards = shards }

    /// Rank r's slice of `full` (length `count`), zero-padded to `shardSize` (one shard:
    /// `full` itself, sharing its storage).
    public func shard(_ full: [Double], rank r: Int) -> [Double] {
        if shards == 1 { return full }
        return (0..<shardSize).map { i in let j = r * shardSize + i; return j < count ? full[j] : 0 }
    }
    /// Drops the padding of a gathered vector (none: the vector itself, sharing its storage).
    public func unpad(_ padded: [Double]) -> [Double] { padded.count == count ? padded : Array(padded.prefix(count)) }
}
