import Collectives
import CMPI
import Scalars

/// The MPI job this process is part of: initialization and finalization of Open MPI.
///
/// MPI is called from the main thread only (`MPI_THREAD_FUNNELED`); a sweep's worker
/// threads never communicate.
public enum MPIJob {
    /// Initializes MPI and returns this process's communicator on `MPI_COMM_WORLD`.
    public static func initialize() -> MPICommunicator {
        var provided: Int32 = 0
        check(MPI_Init_thread(nil, nil, hh_mpi_thread_funneled(), &provided), "MPI_Init_thread")
        precondition(provided >= hh_mpi_thread_funneled(), "MPI does not provide MPI_THREAD_FUNNELED")
        var rank: Int32 = 0, size: Int32 = 0
        check(MPI_Comm_rank(hh_mpi_comm_world(), &rank), "MPI_Comm_rank")
        check(MPI_Comm_size(hh_mpi_comm_world(), &size), "MPI_Comm_size")
        return MPICommunicator(rank: Int(rank), size: Int(size))
    }

    public static func finalize() { _ = MPI_Finalize() }

    static func check(_ rc: Int32, _ what: String) {
        precondition(rc == hh_mpi_success(), "\(what) failed with MPI error \(rc)")
    }
}

/// ``Communicator`` on MPI: the same collectives and the same results as the
/// in-process world, bitwise.
///
/// Reductions are not left to MPI's reduction operators (whose order of summation
/// is unspecified and which know nothing of emulated formats): every rank gathers the
/// contributions it needs and adds them with ``reduce(_:_:_:)``, in the documented
/// format and order. `reduceScatter` sends each rank only its chunk (`MPI_Alltoall`,
/// the same volume as a ring reduce-scatter); `allReduce` all-gathers (collectives
/// here carry short vectors: dot products, projections). Values travel as binary64,
/// an exact carrier for every format inside it, except in the binary32 collectives of
/// the fp32 sharded FD-HVP (`MPI_FLOAT`).
public struct MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    public func allGather(_ local: [Double]) -> [Double] { gather(local, hh_mpi_double()) }

    public func reduceScatter(_ full: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
        let (received, m) = exchangeChunks(full, hh_mpi_double())
        return reduce((0..<size).map { Array(received[($0 * m)..<(($0 + 1) * m)]) }, format, order)
    }

    public func allReduce(_ x: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
        let all = allGather(x), m = x.count
        return reduce((0..<size).map { Array(all[($0 * m)..<(($0 + 1) * m)]) }, format, order)
    }

    /// Binary32 values as `MPI_FLOAT`.
    public func allGather(_ local: [Float]) -> [Float] { gather(local, hh_mpi_float()) }

    /// Binary32 chunks as `MPI_FLOAT`, added in place of the received buffer (``reduce(_:_:)-([UnsafeBufferPointer<Float>],_)``).
    public func reduceScatter(_ full: [Float], order: ReductionOrder) -> [Float] {
        let (received, m) = exchangeChunks(full, hh_mpi_float())
        if size == 1 { return received }
        return received.withUnsafeBufferPointer { r in
            reduce((0..<size).map { UnsafeBufferPointer(rebasing: r[($0 * m)..<(($0 + 1) * m)]) }, order)
        }
    }

    /// `MPI_Allgather` of `local` (values of `type`, which must match `E`).
    func gather<E: BinaryFloatingPoint>(_ local: [E], _ type: MPI_Datatype) -> [E] {
        let m = local.count
        precondition(m <= Int(Int32.max), "allGather: \(m) values exceed one MPI message")
        var out = [E](repeating: 0, count: m * size)
        local.withUnsafeBufferPointer { l in
            out.withUnsafeMutableBufferPointer { o in
                MPIJob.check(MPI_Allgather(l.baseAddress, Int32(m), type, o.baseAddress, Int32(m), type, hh_mpi_comm_world()), "MPI_Allgather")
            }
        }
        return out
    }

    /// `MPI_Alltoall` of `full`'s S chunks: rank r receives every rank's chunk r, in rank
    /// order (the same volume as a ring reduce-scatter). Returns them and the chunk length.
    func exchangeChunks<E: BinaryFloatingPoint>(_ full: [E], _ type: MPI_Datatype) -> (received: [E], chunk: Int) {
        precondition(full.count % size == 0, "reduceScatter: length \(full.count) not divisible by \(size) ranks")
        let m = full.count / size
        precondition(m <= Int(Int32.max), "reduceScatter: \(m) values exceed one MPI message")
        var received = [E](repeating: 0, count: full.count)
        full.withUnsafeBufferPointer { f in
            received.withUnsafeMutableBufferPointer { r in
                MPIJob.check(MPI_Alltoall(f.baseAddress, Int32(m), type, r.baseAddress, Int32(m), type, hh_mpi_comm_world()), "MPI_Alltoall")
            }
        }
        return (received, m)
    }
}
