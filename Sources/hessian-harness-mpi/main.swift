import Foundation
import Harness
import HarnessCLI
import MPIBackend

// `mpirun -np N hessian-harness-mpi COMMAND ...`: the same command line as
// hessian-harness, each process one rank of the job. Distributed commands: hvp and
// slq --model (FSDP-sharded, one shard per rank) and run (configurations split
// across ranks); rank 0 writes the results.
CLI.selectBLASKernel()
let comm = MPIJob.initialize()
Cluster.world = comm
let arguments = Array(CommandLine.arguments.dropFirst())
let distributed: Set<String> = ["hvp", "slq", "run", "bench", "version", "help"]
var status: Int32 = 0
if let first = arguments.first, !first.hasPrefix("-"), !distributed.contains(first) {
    if comm.rank == 0 {
        FileHandle.standardError.write(Data("error: '\(first)' does not run as a multi-process job (distributed: hvp, slq --model, run, bench shard-hvp); use hessian-harness\n".utf8))
    }
    status = 2
} else {
    status = CLI.run(arguments)
}
MPIJob.finalize()
exit(status)
