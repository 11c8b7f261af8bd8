// swift-tools-version:6.1
//
// hessian-harness: a numerical precision research harness for finite-difference
// Hessian-vector products and Lanczos/SLQ spectra.
//
// Layers (each target imports only the ones below it; README "Architecture"):
//   1. CMPFR, COpenBLAS, CKernels  system libraries (MPFR+GMP, OpenBLAS CBLAS + LAPACKE), C loops; Checkpoints (file readers)
//   2. Scalars                 BFloat16, parametric low-precision formats, MPFloat<bits>, Dual<T>, the format registry
//   3. LinearAlgebra           kernels under accumulation policies, BLAS/LAPACK fast paths, eigensolvers,
//                              linear operators and the synthetic operators of known spectrum
//   4. Krylov                  Lanczos (reorthogonalization, diagnostics), SLQ, trace estimators
//      Collectives             communicators (in-process, MPI), ordered reductions, the FSDP shard layout
//   5. Models                  parameter layouts, hand-written reverse passes, models that describe themselves
//   6. Curvature               exact and finite-difference HVPs, step policies, sharded HVPs, full Hessians, approximations
//   7. Studies                 one file per study: pure functions from a config to tables
//   8. Harness (+ Benchmarks, HarnessCLI, hessian-harness)  commands, experiments, output, reports; the CLI
import Foundation
import PackageDescription

// MPI is optional: the backend (CMPI, MPIBackend, hessian-harness-mpi, MPITests) is
// part of the package when Open MPI's headers are installed (libopenmpi-dev), or
// forced with HH_MPI=1 / left out with HH_MPI=0. Everything else builds without it.
let mpiHeaders = ["/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h", "/usr/lib/aarch64-linux-gnu/openmpi/include/mpi.h",
                  "/usr/include/openmpi/mpi.h", "/usr/include/mpi.h", "/usr/local/include/mpi.h"]
let mpiSetting = ProcessInfo.processInfo.environment["HH_MPI"]
let withMPI = mpiSetting == "1" || (mpiSetting != "0" && mpiHeaders.contains { FileManager.default.fileExists(atPath: $0) })

let package = Package(
    name: "hessian-harness",
    products: [
        .executable(name: "hessian-harness", targets: ["hessian-harness"]),
        .library(name: "Scalars", targets: ["Scalars"]),
        .library(name: "LinearAlgebra", targets: ["LinearAlgebra"]),
        .library(name: "Krylov", targets: ["Krylov"]),
        .library(name: "Checkpoints", targets: ["Checkpoints"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Curvature", targets: ["Curvature"]),
        .library(name: "Studies", targets: ["Studies"]),
        .library(name: "Harness", targets: ["Harness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CMPFR",
            pkgConfig: "mpfr",
            providers: [.apt(["libmpfr-dev", "libgmp-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // Loops compiled for AVX2/AVX-512 and chosen at run time (Swift cannot do that
        // for one function; the package targets baseline x86-64): fused multiply-add
        // axpy, the binary32 tanh's Double evaluation; and the CPU's level for OpenBLAS.
        // Also the fixed-width MPFR dot product (mpfr_dot.c), hence CMPFR.
        .target(name: "CKernels", dependencies: ["CMPFR"]),
        // Checkpoint readers (GGUF, safetensors + config.json): Foundation only, below Models.
        .target(name: "Checkpoints"),
        .target(
            name: "Scalars",
            dependencies: [
                "CMPFR",
                "CKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(
            name: "LinearAlgebra",
            dependencies: [
                "Scalars",
                "COpenBLAS",
                "CKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(
            name: "Krylov",
            dependencies: [
                "Scalars",
                "LinearAlgebra",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        // Communicators (in-process ranks and the MPI backend's), reductions in a chosen
        // order, the FSDP shard layout: used by curvature's sharded HVPs and by the sweep.
        .target(
            name: "Collectives",
            dependencies: ["Scalars", "LinearAlgebra"]
        ),
        .target(
            name: "Models",
            dependencies: [
                "Checkpoints",
                "Scalars",
                "LinearAlgebra",
                .product(name: "RealModule", package: "swift-numerics"),
                .product(name: "CSV", package: "CSV.swift"),
            ]
        ),
        .target(
            name: "Curvature",
            dependencies: [
                "Collectives",
                "Scalars",
                "LinearAlgebra",
                "Krylov",
                "Models",
                "CKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(
            name: "Studies",
            dependencies: [
                "Collectives",
                "Scalars",
                "LinearAlgebra",
                "Krylov",
                "Models",
                "Curvature",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(
            name: "Harness",
            dependencies: [
                "CKernels",
                "Studies",
                "Collectives",
                "Checkpoints",
                "Scalars",
                "LinearAlgebra",
                "Krylov",
                "Models",
                "Curvature",
                "CMPFR",
                "COpenBLAS",
                .product(name: "RealModule", package: "swift-numerics"),
                .product(name: "CSV", package: "CSV.swift"),
                .product(name: "Yams", package: "Yams"),
            ],
            plugins: ["BuildInfo"]
        ),
        // Writes the commit the tool is built from into Harness (manifest.json's git_commit).
        .plugin(name: "BuildInfo", capability: .buildTool()),
        // The `bench` subcommand's measurements (scalars, kernels, models, Krylov, sweeps,
        // shards): a target of their own, so the Harness library holds what users run.
        .target(
            name: "Benchmarks",
            dependencies: [
                "CKernels",
                "Harness",
                "Studies",
                "Curvature",
                "Collectives",
                "Models",
                "Krylov",
                "LinearAlgebra",
                "Scalars",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(
            name: "HarnessCLI",
            dependencies: [
                "Harness",
                "Benchmarks",
                "Scalars",
                "LinearAlgebra",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "hessian-harness",
            dependencies: ["HarnessCLI"]
        ),
        .testTarget(
            name: "ScalarsTests",
            dependencies: [
                "Scalars",
                "CMPFR",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            resources: [.copy("Golden")]
        ),
        .testTarget(
            name: "LinearAlgebraTests",
            dependencies: [
                "LinearAlgebra",
                "Scalars",
                "COpenBLAS",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .testTarget(
            name: "KrylovTests",
            dependencies: [
                "Krylov",
                "LinearAlgebra",
                "Scalars",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        // Fixtures and helpers shared by ModelsTests and CurvatureTests (small models, MPFR vectors, dense matrices).
        .target(
            name: "TestSupport",
            dependencies: ["Models", "LinearAlgebra", "Scalars"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "ModelsTests",
            dependencies: [
                "Models",
                "TestSupport",
                "Checkpoints",
                "Curvature",
                "LinearAlgebra",
                "Scalars",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "CurvatureTests",
            dependencies: [
                "Curvature",
                "Collectives",
                "Models",
                "TestSupport",
                "Krylov",
                "LinearAlgebra",
                "Scalars",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .testTarget(
            name: "StudiesTests",
            dependencies: [
                "Studies",
                "Models",
                "Curvature",
                "Scalars",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        // Checks of the release build itself (object files), see OutlinedConstantsTests.
        .testTarget(
            name: "BuildChecksTests",
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "CheckpointsTests",
            dependencies: ["Checkpoints", "Harness"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "HarnessTests",
            dependencies: ["Harness", "Studies", "Scalars", "Krylov", "LinearAlgebra", "CKernels", "hessian-harness"]
        ),
    ]
)

if withMPI {
    package.products.append(.executable(name: "hessian-harness-mpi", targets: ["hessian-harness-mpi"]))
    package.targets += [
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),
        .target(
            name: "MPIBackend",
            dependencies: ["CMPI", "Collectives", "Scalars"]
        ),
        .executableTarget(
            name: "hessian-harness-mpi",
            dependencies: ["MPIBackend", "HarnessCLI", "Harness"]
        ),
        .testTarget(
            name: "MPITests",
            dependencies: ["Harness", "hessian-harness", "hessian-harness-mpi"]
        ),
    ]
}
