import ArgumentParser
import Harness
import Scalars
#if canImport(Glibc)
import Glibc
#endif

/// Prints `message` as one line on stderr and exits with status 2.
func fail(_ message: String) -> Never {
    FileHandleStderr.write("error: \(message)\n")
    exit(2)
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

struct HessianHarness: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hessian-harness",
        abstract: "Numerical precision research harness for finite-difference Hessian-vector products and Lanczos/SLQ.",
        version: ToolInfo.version,
        subcommands: [Formats.self, Cast.self, Version.self, Bench.self]
    )
}

struct Formats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every format with p, emin, emax, unit roundoff u, smallest subnormal and largest finite.")
    @Flag(help: "Print CSV instead of an aligned table.") var csv = false
    func run() throws { print(FormatsCommand.render(csv: csv), terminator: "") }
}

struct Cast: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Round exact decimal / hex-float values correctly into a format and report the error.",
        discussion: """
        Each VALUE is parsed exactly (decimal, C99 hex-float such as 0x1.8p-3, inf, -inf, nan) and rounded \
        once into the format. Output: CSV with header input,format,rounding,value,bits,abs_error,rel_error. \
        FORMAT: bf16, fp16, tf32, fp32, fp64, e4m3, e5m2, mpfrN, or p=P,emin=E,emax=E[,subnormals=yes|no]\
        [,infinities=yes|no][,overflow=infinity|nan|saturate]. Errors: one line on stderr, exit 2, nothing on stdout.
        """)
    @Option(help: "Target format.") var format: String
    @Option(help: "nearest, toward-zero, up, down or stochastic.") var rounding: String = "nearest"
    @Option(help: "Seed of the stochastic-rounding generator (SplitMix64).") var seed: UInt64 = 0
    @Argument(parsing: .allUnrecognized, help: "Values to round.") var values: [String] = []
    func run() throws {
        do { print(try CastCommand.run(format: format, rounding: rounding, seed: seed, values: values), terminator: "") }
        catch let e as HarnessError { fail(e.message) }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Tool and library versions (MPFR, GMP, OpenBLAS).")
    func run() throws { for l in ToolInfo.lines { print(l) } }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (build with -c release). Suites: scalars.")
    @Argument(help: "Suite to run.") var suite: String = "scalars"
    @Option(help: "Elements per elementwise kernel.") var n: Int = 4096
    @Option(help: "Repetitions per trial.") var reps: Int = 200
    @Option(help: "Trials (the median is reported).") var trials: Int = 7
    func run() throws {
        guard suite == "scalars" else { fail("unknown benchmark suite '\(suite)' (known: scalars)") }
        print(ScalarsBench.render(ScalarsBench.run(n: n, reps: reps, trials: trials)), terminator: "")
    }
}

HessianHarness.main()
