import Benchmarks
import ArgumentParser
import Foundation
import Harness
import LinearAlgebra
import Scalars
#if canImport(Glibc)
import Glibc
#endif

/// The command-line interface of hessian-harness, shared by the ordinary executable
/// and the MPI one (which sets ``Cluster/world`` first).
public enum CLI {
    /// Parses `arguments` (default: the process's), runs the command and returns the
    /// exit status: 0, or 2 with one line on stderr for bad input and failures; help
    /// and version requests print and return 0. In a multi-process job an error that
    /// every rank raises alike is printed by rank 0 only.
    public static func run(_ arguments: [String]? = nil) -> Int32 {
        ToolInfo.pinBLASThreads()
        do {
            let args = try prepare(arguments ?? Array(CommandLine.arguments.dropFirst()))
            var command = try HessianHarness.parseAsRoot(args)
            try command.run()
            return 0
        } catch is PeerFailure {
            return 2
        } catch {
            if HessianHarness.exitCode(for: error) == .success {
                if Cluster.isRoot { print(HessianHarness.fullMessage(for: error)) }
                return 0
            }
            if Cluster.isRoot || error is RankError {
                let message = HessianHarness.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
                StandardError.write("error: \(message)\n")
            }
            return 2
        }
    }
}

extension CLI {
    /// Checks the arguments before the parser sees them and takes out the global
    /// `--max-memory SIZE` (which sets ``MemoryBudget``'s limit through
    /// `HH_MAX_MEMORY`): an option given twice is refused (the parser would let the
    /// last one win silently), and so is an empty `--out` (it would resolve to the
    /// working directory). Arguments after `--` are values, not options.
    static func prepare(_ args: [String]) throws -> [String] {
        var out: [String] = [], seen: Set<String> = []
        var i = 0, valuesOnly = false
        while i < args.count {
            let a = args[i]
            if valuesOnly || !a.hasPrefix("--") || a.count == 2 {
                if a == "--" { valuesOnly = true }
                out.append(a); i += 1; continue
            }
            let parts = a.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let name = parts[0]
            guard seen.insert(name).inserted else { throw HarnessError("\(name) is given twice") }
            let value: String? = parts.count == 2 ? parts[1] : (i + 1 < args.count ? args[i + 1] : nil)
            if name == "--out", let v = value, v.allSatisfy(\.isWhitespace) { throw HarnessError("--out needs a path (it was given an empty one)") }
            if name == "--max-memory" {
                guard let v = value, let bytes = MemoryBudget.parse(v) else {
                    throw HarnessError("--max-memory needs a size such as 8G, 512M or 1000000 (got '\(value ?? "")')")
                }
                setenv("HH_MAX_MEMORY", "\(bytes)", 1)
                i += parts.count == 2 ? 1 : 2
                continue
            }
            if name == "--oracle-timeout" {
                guard let v = value, let t = Double(v), t > 0, t.isFinite, t <= 1e7 else {
                    throw HarnessError("--oracle-timeout needs a number of seconds in (0, 1e7] (got '\(value ?? "")')")
                }
                setenv("HH_ORACLE_TIMEOUT", "\(t)", 1)
                i += parts.count == 2 ? 1 : 2
                continue
            }
            out.append(a); i += 1
        }
        if out.first == "cast" { out = Cast.takeValues(out) }
        return out
    }

    /// Re-executes this program once with `OPENBLAS_CORETYPE` set to the kernel set
    /// `HH_BLAS_CORE` asks for (``BLASRuntime/Policy``; default `auto`: the CPU's level
    /// when OpenBLAS detected less; Debian 12's OpenBLAS takes this project's Sapphire
    /// Rapids machines for a Prescott, whose sgemm is 5× slower). Returns when there is
    /// nothing to change, when the user set `OPENBLAS_CORETYPE` (their choice stands),
    /// or when exec fails (the process then goes on with the detected kernels). A bad
    /// `HH_BLAS_CORE` is an input error: one line on stderr, exit status 2. Call first
    /// thing in `main`, before any thread or MPI starts; the new image sees the variable
    /// and does not re-execute. It applies `HH_MALLOC` first (``configureAllocator()``).
    public static func selectBLASKernel() {
        configureAllocator()
        guard getenv("OPENBLAS_CORETYPE") == nil else { return }
        let policy: BLASRuntime.Policy
        do { policy = try BLASRuntime.Policy(environment: getenv("HH_BLAS_CORE").map { String(cString: $0) }) } catch {
            StandardError.write("error: \(error)\n")
            exit(2)
        }
        guard let core = policy.coreType(detected: BLASRuntime.coreName, cpuLevel: .current) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")
    }
}

extension CLI {
    /// Applies `HH_MALLOC` (``ProcessAllocator/Policy``; default `keep`: freed memory is
    /// kept for reuse, not returned to the kernel and faulted in again). A bad value is
    /// an input error: one line on stderr, exit status 2.
    static func configureAllocator() {
        do {
            let policy = try ProcessAllocator.Policy(environment: getenv("HH_MALLOC").map { String(cString: $0) })
            if policy == .keep { ProcessAllocator.keepFreedMemory() }
        } catch {
            StandardError.write("error: \(error)\n")
            exit(2)
        }
    }
}

enum StandardError {
    static func write(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

public struct HessianHarness: ParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "hessian-harness",
        abstract: "Numerical precision research harness for finite-difference Hessian-vector products and Lanczos/SLQ.",
        discussion: """
        Every command checks the memory its sizes need before allocating and refuses, naming the estimate, when it \
        exceeds the machine's memory, ulimit -v or the cgroup's limit. --max-memory SIZE (e.g. 8G, before or after \
        the command) sets a lower limit; so does the HH_MAX_MEMORY environment variable. A model spec external:CMD \
        measures your own model in your own framework (docs/ORACLE.md); --oracle-timeout SECONDS (default 600, or \
        HH_ORACLE_TIMEOUT) bounds each of its answers.
        """,
        version: "\(ToolInfo.version) (commit \(BuildInfo.gitCommit))",
        subcommands: [Formats.self, Cast.self, Spectrum.self, SLQ.self, Eigen.self, Trace.self, HVP.self, Recommend.self, Run.self, Report.self, TableCmd.self,
                      Checkpoint.self, Version.self, Bench.self]
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
        FORMAT: \(FloatFormat.named.map(\.name).joined(separator: ", ")), mpfrN, or p=P,emin=E,emax=E[,subnormals=yes|no]\
        [,infinities=yes|no][,nan=yes|no][,overflow=infinity|nan|saturate]. Errors: one line on stderr, exit 2, nothing on stdout.
        """)
    @Option(help: "Target format.") var format: String
    @Option(help: "nearest, toward-zero, up, down or stochastic.") var rounding: String = "nearest"
    @Option(help: "Seed of the stochastic-rounding generator (SplitMix64).") var seed: UInt64 = 0
    @Argument(parsing: .allUnrecognized, help: "Values to round (after `--`, values may start with '-': `cast --format bf16 -- -inf`).") var values: [String] = []
    /// The values, taken out of the arguments before ArgumentParser sees them: it removes
    /// each consumed positional argument from an array, so 20,000 values took 18 s.
    nonisolated(unsafe) static var commandLineValues: [String]? = nil

    /// Splits `cast …` into the options (left for ArgumentParser) and the values, in
    /// order: everything after `--`, and before it every word that is neither an option
    /// (`--name`, `--name=value`, `-h`) nor the value of `--format`, `--rounding`, `--seed`.
    static func takeValues(_ args: [String]) -> [String] {
        var kept = [args[0]], vs: [String] = []
        var i = 1
        while i < args.count {
            let a = args[i]
            if a == "--" { vs.append(contentsOf: args[(i + 1)...]); break }
            if ["--format", "--rounding", "--seed"].contains(a) {
                kept.append(a)
                if i + 1 < args.count { kept.append(args[i + 1]) }
                i += 2; continue
            }
            if (a.hasPrefix("--") && a.count > 2) || a == "-h" { kept.append(a) } else { vs.append(a) }
            i += 1
        }
        commandLineValues = vs
        return kept
    }

    func run() throws {
        // `.allUnrecognized` hands the `--` terminator through as a value: it only ends the options.
        var vs = Self.commandLineValues ?? values
        if Self.commandLineValues == nil, let i = vs.firstIndex(of: "--") { vs.remove(at: i) }
        print(try CastCommand.run(format: format, rounding: rounding, seed: seed, values: vs), terminator: "")
    }
}

struct Spectrum: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact eigenvalues of a synthetic operator → DIR/eigenvalues.csv (index,eigenvalue) and manifest.json.",
        discussion: "SPEC: diag:values=1;2;3 | diag:n=N,lo=A,hi=B[,dist=linear|log] | rotated:… | mp:n=N,ratio=R | spiked:n=N[,spikes=5;4;3][,ratio=R] | powerlaw:n=N,alpha=A | strakos:n=N")
    @Option(name: .customLong("operator"), help: "Operator spec.") var operatorSpec: String
    @Option(help: "Seed of the operator's random draws.") var seed: UInt64 = 0
    @Option(help: "Output directory.") var out: String
    func run() throws {
        try SpectrumCommand.run(operator: operatorSpec, seed: seed, out: out, command: CommandLine.arguments)
    }
}

struct SLQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slq",
        abstract: "Stochastic Lanczos quadrature: of a synthetic operator in any Krylov format (--operator), or FD-HVP SLQ of a model with settings from a regimes file (--model, --regimes).",
        discussion: """
        Operator form: writes DIR/nodes.csv (probe,node,weight,residual_estimate: the Ritz values, their Gauss weights and \
        β_k|s_kj|), spectrum.csv (the exact eigenvalues, up to 200,000), density.csv (x,density: Gaussian broadening, default σ = 1% of \
        the node range), lanczos.csv (probe,step,alpha,beta,orth_loss,orth_loss_fro,reorthogonalized), summary.csv \
        (w1, w1_scaled, ks against the exact spectrum, Ritz diagnostics, timings) and manifest.json. \
        Model form: ε, scheme, step policy, reorthogonalization and steps come from the regimes entry matching --policy \
        (its param, compute and grad formats; --scheme/--step-policy choose among several); --eps/--steps/--reorth override. \
        An entry that failed its held-out validation is refused unless --allow-unvalidated. Without --regimes: --policy \
        and --eps (scheme central, step policy absolute, 30 steps, full reorthogonalization unless given). The \
        Lanczos vectors are in the policy's krylov format, their dot products and norms in its accumulate format (never \
        narrower than the vectors); --shards runs every FD-HVP FSDP-style in process. Writes the \
        same files (summary.csv compares with the exact spectrum, and spectrum.csv holds it, when the model has ≤ 3000 parameters). \
        Bad input: one line on stderr, exit 2, nothing written.
        """)
    @Option(name: .customLong("operator"), help: "Operator spec (see `spectrum --help`).") var operatorSpec: String?
    @Option(help: "Model spec (see `hvp --help`); with --regimes, or with --policy and --eps.") var model: String?
    @Option(help: "Regimes file (regimes.json from the regimes study).") var regimes: String?
    @Option(help: "Model form: the FD step ε (or η for --step-policy relative), or auto (chosen from the model, as `recommend` does); overrides the regimes entry's.") var eps: String?
    @Flag(name: .customLong("allow-unvalidated"), help: "Model form: use a regimes entry that failed its held-out validation.") var allowUnvalidated = false
    @Option(help: "Precision policy of the model run (default: the regimes entry's).") var policy: String?
    @Option(help: "Choose the regimes entry's scheme (forward, central, richardson).") var scheme: String?
    @Option(name: .customLong("step-policy"), help: "Choose the regimes entry's step policy (absolute, relative).") var stepPolicy: String?
    @Option(help: "FSDP shards of the model run (in-process ranks; default 1).") var shards: Int?
    @Option(help: "Reduction order of the collectives: sequential (default) or tree.") var order: String?
    @Option(help: "Lanczos steps per probe (model form: default from the regimes entry).") var steps: Int?
    @Option(help: "Number of probes.") var probes: Int = 10
    @Option(help: "none, full, partial or selective (model form: default from the regimes entry).") var reorth: String?
    @Option(help: "Format of the Lanczos vectors and dot products (operator form).") var krylov: String = "fp64"
    @Option(help: "Rounding mode of the Krylov format (operator form).") var rounding: String = "nearest"
    @Option(help: "Dot-product accumulation (operator form): auto (fp32 sums for Krylov formats narrower than fp32, else recursive in the Krylov format), recursive, pairwise, compensated, fp32, fp64, blas.") var accumulation: String = "auto"
    @Option(help: "rademacher or gaussian.") var probe: String = "rademacher"
    @Option(help: "Gaussian broadening σ of the density (default 1% of the node range).") var sigma: Double?
    @Option(help: "Points of the density grid.") var grid: Int = 512
    @Option(help: "Seed (operator or model, probes, stochastic rounding).") var seed: UInt64 = 0
    @Option(help: "With --model: only these parameter tensors (comma-separated names or globs of names or blocks, e.g. 'blk.29.*'): the Hessian block H_SS, every other parameter held fixed.") var params: String?
    @Option(help: "Output directory.") var out: String
    func run() throws {
        switch (operatorSpec, model) {
        case (let op?, nil):
            if regimes != nil || policy != nil || eps != nil || allowUnvalidated || shards != nil || order != nil || scheme != nil || stepPolicy != nil {
                throw HarnessError("--regimes, --policy, --eps, --scheme, --step-policy, --shards, --order and --allow-unvalidated go with --model, not --operator")
            }
            if Cluster.size > 1 { throw HarnessError("slq --operator does not run as a multi-process job; use hessian-harness") }
            let c = SLQCommand(operatorSpec: op, steps: steps ?? 50, probes: probes, reorth: reorth ?? "none", krylov: krylov,
                               rounding: rounding, accumulation: accumulation, probe: probe, sigma: sigma, gridPoints: grid,
                               seed: seed, out: out, command: CommandLine.arguments)
            try c.run()
        case (nil, let m?):
            var c = ModelSLQCommand(model: m, regimes: regimes, policy: policy, scheme: scheme, stepPolicy: stepPolicy, eps: eps,
                                    allowUnvalidated: allowUnvalidated, shards: shards ?? 1,
                                    order: order ?? "sequential", steps: steps, reorth: reorth, probes: probes, probe: probe, sigma: sigma,
                                    gridPoints: grid, seed: seed, out: out, command: CommandLine.arguments)
            c.params = params
            try c.run()
        default:
            throw HarnessError("give exactly one of --operator and --model")
        }
    }
}

struct Recommend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An FD step for a model under a policy, chosen from the model itself (no reference HVP), with its predicted error.",
        discussion: """
        FD-HVPs at a geometric grid of ε (ratio 2, Richardson 3) around the naive optimum; the differences of neighbours \
        give the truncation constant and the rounding-noise level of this model (docs/NUMERICS.md §4). Prints one line: \
        ε, η = ε‖v‖/‖θ‖, the predicted rel_err and the band where it meets --tolerance, or that no ε does and the \
        achievable error. The bias probe (on unless --no-bias-probe) runs the FD-HVP at ε again, under the policy and with \
        every stage in fp32 (fp64 for a policy with no narrower stage); their difference, which the grid cannot see, \
        enters the predicted error. θ and v are those of `hvp` with the same --model and --seed. --out DIR writes \
        recommend.csv, recommend.json, grid.csv and manifest.json. --reference fp64|mpfr256 also measures the error at ε \
        (a check). Bad input: one line on stderr, exit 2, nothing written.
        """)
    @Option(help: "Model spec (see `hvp --help`).") var model: String
    @Option(help: "Precision policy.") var policy: String
    @Option(help: "forward, central or richardson.") var scheme: String = "central"
    @Option(help: "Tolerance on rel_err.") var tolerance: Double = 0.05
    @Option(help: "FSDP shards (in-process ranks) of every FD-HVP.") var shards: Int = 1
    @Option(help: "none, fp64 or mpfr256: also measure the error at the chosen ε against that exact HVP.") var reference: String = "none"
    @Option(help: "Seed (data, parameters, v, stochastic rounding).") var seed: UInt64 = 0
    @Option(help: "Only these parameter tensors (comma-separated names or globs of names or blocks, e.g. 'blk.29.*'): the Hessian block H_SS, every other parameter held fixed.") var params: String?
    @Flag(inversion: .prefixedNo, help: "Run the bias probe (two more FD-HVPs at ε, one in a wider format).") var biasProbe = true
    @Option(help: "Output directory (optional).") var out: String?
    func run() throws {
        var c = RecommendCommand(model: model, policy: policy, scheme: scheme, tolerance: tolerance, shards: shards, reference: reference,
                                 seed: seed, out: out, command: CommandLine.arguments)
        c.params = params
        c.biasProbe = biasProbe
        try c.run()
    }
}

struct HVP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvp",
        abstract: "One Hessian-vector product of a model under a precision policy, against the exact HVP (mpfr256, fp64 or none).",
        discussion: """
        MODEL: quadratic:OPERATOR | softmax:d=D,classes=K[,samples=N] | mlp:widths=D-H-…-K[,act=tanh|gelu|relu][,samples=N][,loss=ce|mse] \
        (softmax and mlp on your data: ,data=FILE.csv or ,x=X.npy,y=Y.npy) | \
        transformer[:context=16,width=32,heads=4,layers=2,ff=128,sequences=8] | expsum:n=N | \
        llama:vocab=V,width=D,layers=L,heads=H,kv_heads=K,ff=F[,context=T,sequences=N] | gguf:PATH[,context=T,sequences=N,text=FILE|tokens=FILE.npy] | \
        safetensors:HF_DIR[,…] | external:CMD (your own model in your own framework, docs/ORACLE.md); any built-in one \
        [,params=FILE.npy] (your parameters, flat in model.json's layout) [,train=STEPS[,optimizer=adam|sgd][,lr=RATE]] \
        (trained first; model.json and training_loss.npy record it) [,subset=GLOB|GLOB…] (as --params, for experiment files). \
        POLICY: param=F,compute=F,accumulate=F,grad=F,hvp=F,krylov=F[,rounding=MODE] (unnamed stages fp64). Writes model.json, params.npy, x.npy/y.npy \
        (or the quadratic's A and b), v.npy, hv_exact.npy, hv.npy, summary.csv (rel_err, cos_align, swamped_fraction, timings, peak RSS per stage) \
        and manifest.json. Bad input: one line on stderr, exit 2, nothing written.
        """)
    @Option(help: "Model spec.") var model: String
    @Option(help: "Seed (data, parameters, v, stochastic rounding).") var seed: UInt64 = 0
    @Option(help: "Precision policy.") var policy: String = ""
    @Option(help: "exact, forward, central or richardson.") var scheme: String = "central"
    @Option(help: "Step ε (absolute) or η (relative); finite and > 0.") var eps: Double = 1e-4
    @Option(name: .customLong("step-policy"), help: "absolute or relative.") var stepPolicy: String = "absolute"
    @Option(help: "FSDP shards (in-process ranks).") var shards: Int = 1
    @Option(help: "Reduction order of the collectives: sequential or tree.") var order: String = "sequential"
    @Option(help: "Output directory.") var out: String
    @Option(help: "Format of the exact reference HVP: mpfr256 (or another mpfrN), fp64 (forward-over-reverse in Dual<Double>, sums in order: for large models), or none.")
    var reference: String = "mpfr256"
    @Option(help: "Only these parameter tensors (comma-separated names or globs of names or blocks, e.g. 'blk.29.*'): the Hessian block H_SS, every other parameter held fixed.") var params: String?
    @Option(help: "Time the gradient and the HVP this many times each: time_grad_s and time_hvp_s are the first (fresh memory included), time_grad_warm_s and time_hvp_warm_s the median of the others.") var repeats: Int = 1
    func run() throws {
        var c = HVPCommand(model: model, seed: seed, policy: policy, scheme: scheme, eps: eps, stepPolicy: stepPolicy,
                           shards: shards, order: order, out: out, command: CommandLine.arguments, reference: reference)
        c.params = params
        c.repeats = repeats
        try c.run()
    }
}

struct Eigen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extreme eigenpairs of an operator or of a model's Hessian (FD-HVP under a policy, or exact): Ritz values with residuals.",
        discussion: """
        Lanczos with full reorthogonalization in fp64 (--steps, default max(3·top + 20, 50)) from a seeded Gaussian start. \
        eigen.csv: per Ritz pair which, rank, ritz_value, residual_estimate (β_k|s_kj|), residual (‖A y − θ y‖, one more \
        application of the same operator), error_bound (the residual: a symmetric operator has an eigenvalue within it; an \
        FD-HVP is symmetric only up to its own error), and \
        with a known spectrum (operators; models of ≤ 3000 parameters with an fp64 exact HVP) the nearest exact eigenvalue \
        and abs_err; eigenvectors.npy (rows, unit length) with --vectors. MODEL as for hvp; --scheme exact uses the compute \
        format's exact HVP.
        """)
    @OptionGroup var source: SpectralSourceOptions
    @Option(help: "How many eigenpairs at each end asked for.") var top: Int = 5
    @Option(help: "largest, smallest or both.") var which: String = "largest"
    @Option(help: "Lanczos steps.") var steps: Int?
    @Flag(help: "Write the Ritz vectors (eigenvectors.npy).") var vectors = false
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Output directory.") var out: String
    func run() throws {
        try EigenCommand(source: source.options, top: top, which: which, steps: steps, vectors: vectors, seed: seed, out: out,
                         command: CommandLine.arguments).run()
    }
}

/// The operator of `eigen` and `trace`: a synthetic operator, or a model's Hessian.
struct SpectralSourceOptions: ParsableArguments {
    @Option(name: .customLong("operator"), help: "Operator spec (see spectrum --help).") var operatorSpec: String?
    @Option(help: "Model spec (as for hvp).") var model: String?
    @Option(help: "Precision policy (with --model).") var policy: String?
    @Option(help: "exact, forward, central or richardson (with --model).") var scheme: String = "central"
    @Option(name: .customLong("step-policy"), help: "absolute or relative.") var stepPolicy: String = "absolute"
    @Option(help: "ε: a number, or auto (chosen from the model, as recommend).") var eps: String?
    @Option(help: "Tolerance of --eps auto.") var tolerance: Double = 0.05
    @Option(help: "With --model: only these parameter tensors (comma-separated names or globs of names or blocks, e.g. 'blk.29.*'): the Hessian block H_SS, every other parameter held fixed.") var params: String?
    var options: SpectralSource.Options {
        var o = SpectralSource.Options(operatorSpec: operatorSpec, model: model, policy: policy, scheme: scheme, stepPolicy: stepPolicy,
                                       eps: eps, tolerance: tolerance)
        o.params = params
        return o
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Trace of an operator or of a model's Hessian: Hutchinson and Hutch++ with standard errors.",
        discussion: """
        Both estimators spend --matvecs applications (a multiple of 3) of the same operator, Rademacher probes from the \
        seed. trace.csv: estimator, matvecs, trace, standard_error, and with a known spectrum the exact trace, abs_err, rel_err.
        """)
    @OptionGroup var source: SpectralSourceOptions
    @Option(help: "Operator applications per estimator (multiple of 3).") var matvecs: Int = 30
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Output directory.") var out: String
    func run() throws {
        try TraceCommand(source: source.options, matvecs: matvecs, seed: seed, out: out, command: CommandLine.arguments).run()
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment file's parameter sweep: tidy CSV tables and manifest.json in one folder.",
        discussion: """
        FILE is a YAML experiment (see experiments/README.md): study (fd-bias, noise-amplification, krylov-stability, \
        regimes, block-diagonal, scaling, recommend-check), its grid, seeds and tolerance. Configurations run in parallel (--jobs); each completed one is \
        journaled in DIR/.sweep, so after an interruption (even kill -9) --resume completes the sweep. The tables are \
        written only when every configuration is done, each file atomically; the same file and seeds give \
        byte-identical CSV for any --jobs. Default DIR: results/NAME (results/quick/NAME with --quick), NAME being the \
        experiment's name or file base name. Bad input: FILE:LINE:COLUMN and the problem on stderr, exit 2, nothing written.
        """)
    @Argument(help: "Experiment file (YAML).") var file: String
    @Option(help: "Output directory.") var out: String?
    @Flag(help: "Complete an interrupted sweep in --out.") var resume = false
    @Option(help: "Parallel configurations (default: the number of cores).") var jobs: Int?
    @Flag(help: "Run the experiment's reduced grid (its quick: section).") var quick = false
    func run() throws {
        let e = try ExperimentLoader.load(path: file, quick: quick)
        let dir = out ?? (quick ? "results/quick/\(e.name)" : "results/\(e.name)")
        // In a multi-process job each rank runs one configuration at a time unless --jobs says otherwise.
        let s = Sweep(experiment: e, out: URL(fileURLWithPath: dir), resume: resume,
                      jobs: jobs ?? (Cluster.size > 1 ? 1 : ProcessInfo.processInfo.activeProcessorCount), command: CommandLine.arguments)
        try s.run()
        if Cluster.isRoot { print("\(e.study.name): \(e.study.units.count) configurations → \(dir)") }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A study's results as a self-contained HTML report (SVG figures, tables) and a Jupyter notebook.",
        discussion: """
        RESULTS_DIR is a folder written by `run` (its manifest.json names the study). Writes DIR/report.html (no network, \
        no Python needed) and DIR/report.ipynb (nbformat 4: pandas loads the same CSV, matplotlib redraws each figure; \
        the figures are embedded so it reads without running). Default DIR: notebooks-export/NAME, NAME being the \
        results folder's name. Missing or malformed results: one line on stderr, exit 2, nothing written.
        """)
    @Argument(help: "Results folder.") var results: String
    @Option(help: "Output directory.") var out: String?
    func run() throws {
        for p in try ReportCommand.run(results: results, out: out) { print(p) }
    }
}

struct TableCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table",
        abstract: "Aggregated table (Markdown or booktabs LaTeX) from any results CSV: one row per --by group.",
        discussion: """
        Per group: columns constant within it show their value; identifiers (seed, replicate, probe, step, …) are never \
        averaged; scales and ratios (ε, errors, fitted constants, times, bytes) get geometric means, other numbers \
        arithmetic means; empty cells are NA. A note under the table says which column got which. --latex prints a \
        booktabs tabular (numbers right-aligned); --standalone a whole document that compiles with pdflatex.
        """)
    @Argument(help: "Results CSV.") var csv: String
    @Option(help: "Comma-separated grouping columns.") var by: String = ""
    @Option(help: "Comma-separated output columns, in order (default: every column the table keeps).") var columns: String = ""
    @Flag(help: "booktabs LaTeX.") var latex = false
    @Flag(help: "With --latex: a complete document (article, booktabs, landscape beyond 8 columns).") var standalone = false
    @Flag(help: "Markdown (default).") var markdown = false
    func run() throws {
        if latex && markdown { throw HarnessError("choose one of --latex and --markdown") }
        if standalone && !latex { throw HarnessError("--standalone needs --latex") }
        func list(_ s: String) -> [String] { s.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        print(try TableCommand.run(path: csv, by: list(by), columns: list(columns), style: latex ? .latex : .markdown, standalone: standalone),
              terminator: "")
    }
}

struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What a checkpoint holds (GGUF file, safetensors file, or Hugging Face folder with config.json); one tensor as fp64 NPY.",
        discussion: """
        Lists the format, architecture, metadata and every tensor (name, type, row-major shape). With --tensor NAME, prints \
        that tensor's size and range, or with --out FILE.npy writes its values in fp64 (GGUF types F32, F16, BF16, Q8_0, \
        Q4_0, Q4_1 dequantized exactly as GGML does, then widened exactly). A malformed or hostile file (wrong magic, \
        truncation, unknown tensor type, offsets outside the file, oversized header): one line on stderr, exit 2, \
        nothing written.
        """)
    @Argument(help: "A .gguf file, a .safetensors file, or a folder with model.safetensors and config.json.") var path: String
    @Option(help: "A tensor's name.") var tensor: String?
    @Option(help: "Write the tensor's fp64 values to this .npy file.") var out: String?
    @Flag(help: "List every metadata entry (tokenizer and general.* included).") var metadata = false
    func run() throws { print(try CheckpointCommand.run(path: path, tensor: tensor, out: out, allMetadata: metadata)) }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Tool and library versions (MPFR, GMP, OpenBLAS).")
    func run() throws { if Cluster.isRoot { for l in ToolInfo.lines { print(l) } } }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (build with -c release). Suites: scalars, krylov, models, formats, topk, gemm, slq, shard-hvp, sweep, sha256.",
        discussion: """
        formats: one gradient of an MLP of 9,610 parameters in every format and rounding mode, and whether the type \
        runs specialized code or the generic path. gemm: C = A·B (n = 256) in fp32/fp64 (BLAS and order-preserving SIMD) and mixed precision (bf16, fp16 inputs with \
        fp32 accumulation; bf16 accumulation). slq: one FD-HVP SLQ run on the transformer LM (--model transformer:…). \
        sweep: CPU seconds of a sweep's own bookkeeping (journal, tables, manifest) over --n empty configurations (default 10⁴). \
        sha256: MB/s of the manifests' file digests over --n bytes (default 64 MiB), with the CPU's compression and the plain C one. \
        shard-hvp: median time per central FD-HVP, collectives and bytes sent per FD-HVP, and peak memory of --shards \
        in-process ranks (--shards 0: the unsharded FD-HVP, the baseline), or per rank under \
        `mpirun -np N hessian-harness-mpi bench shard-hvp` (one shard per rank).
        """)
    @Argument(help: "Suite to run.") var suite: String = "scalars"
    @Option(help: "Elements per elementwise kernel.") var n: Int = 4096
    @Option(help: "Repetitions per trial.") var reps: Int = 200
    @Option(help: "Trials (the median is reported).") var trials: Int = 7
    @Option(name: .customLong("operator"), help: "topk: dense operator spec.") var operatorSpec: String = "mp:n=2000,ratio=0.5"
    @Option(help: "topk: operator seed.") var seed: UInt64 = 1
    @Option(help: "topk: number of largest eigenvalues.") var k: Int = 10
    @Option(help: "topk: accuracy, relative to the spectral radius.") var tol: Double = 1e-10
    @Option(help: "shard-hvp: model spec.") var model: String = "mlp:widths=64-256-256-10,samples=256"
    @Option(help: "shard-hvp: precision policy (default: fp32 with BLAS products, as bench models).") var policy: String = "param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32"
    @Option(help: "shard-hvp: in-process ranks, 0 for the unsharded FD-HVP (omit under MPI).") var shards: Int = 1
    @Option(help: "shard-hvp: a scaling study's costmodel.csv; adds pred_s, a rank's time per FD-HVP as the model's family's central FD-HVP model says at the rank's block of samples.") var costModel: String?
    func run() throws {
        if Cluster.size > 1 && suite != "shard-hvp" { throw HarnessError("under MPI only the shard-hvp benchmark runs") }
        guard (1...1000).contains(trials) else { throw HarnessError("--trials must be in 1...1000 (got \(trials))") }
        guard (1...1_000_000).contains(reps) else { throw HarnessError("--reps must be in 1...1000000 (got \(reps))") }
        guard (1...100_000_000).contains(n) else { throw HarnessError("--n must be in 1...100000000 (got \(n))") }
        try MemoryBudget.check(Double(n) * 8 * 6, "the elementwise benchmark's arrays (--n \(n))")
        guard (1...1000).contains(k) else { throw HarnessError("--k must be in 1...1000 (got \(k))") }
        guard tol > 0 && tol < 1 else { throw HarnessError("--tol must be in (0, 1) (got \(tol))") }
        switch suite {
        case "scalars": print(ScalarsBench.render(ScalarsBench.run(n: n, reps: reps, trials: trials)), terminator: "")
        case "krylov": print(KrylovBench.render(try KrylovBench.run(trials: min(trials, 3))), terminator: "")
        case "models": print(ModelsBench.render(try ModelsBench.run(trials: trials)), terminator: "")
        case "formats": print(FormatsBench.render(try FormatsBench.run(trials: min(trials, 5))), terminator: "")
        case "topk":
            let r = try KrylovBench.topK(spec: operatorSpec, seed: seed, k: k, tol: tol, trials: min(trials, 5))
            print("benchmark,seconds,steps,max_rel_err\n\"lanczos top-\(k) \(operatorSpec) seed \(seed)\",\(r.seconds),\(r.steps),\(r.maxErr)")
        case "gemm": print(PipelineBench.render(PipelineBench.gemm(trials: min(trials, 5))), terminator: "")
        case "slq": print(PipelineBench.render(try PipelineBench.slq(spec: model.hasPrefix("transformer") ? model : "transformer")), terminator: "")
        case "sweep":
            let count = n == 4096 ? 10_000 : n       // --n: configurations (default 10⁴)
            print(SweepBench.render(count: count, jobs: 2, try SweepBench.run(count: count, jobs: 2)), terminator: "")
        case "sha256":
            let bytes = n == 4096 ? 64 << 20 : n     // --n: bytes (default 64 MiB)
            print(SHA256Bench.render(bytes: bytes, SHA256Bench.run(bytes: bytes, trials: min(trials, 9))), terminator: "")
        case "shard-hvp":
            if let t = try ShardBench.run(model: model, policy: policy, shards: shards, reps: min(reps, 50), costModel: costModel) { print(t, terminator: "") }
        default: throw HarnessError("unknown benchmark suite '\(suite)' (known: scalars, krylov, models, formats, topk, gemm, slq, shard-hvp, sweep, sha256)")
        }
    }
}
