import Harness
import Foundation
import Studies

/// `bench sweep`: the bookkeeping of a sweep alone — journal, resume check, tables,
/// manifest — over N configurations that do no work (each returns one row), so the
/// CPU time measured is the harness's own overhead per configuration.
public enum SweepBench {
    struct Empty: Study {
        let count: Int
        var name: String { "sweep-bench" }
        var units: [StudyUnit] { (0..<count).map { StudyUnit(key: "unit-\($0)") } }
        var seeds: [String: UInt64] { [:] }
        func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
            UnitOutput(tables: ["points": [["\(index)", "0.5"]]])
        }
        func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
            StudyOutput(tables: [StudyTable(name: "points", header: ["unit", "value"], rows: outputs.flatMap { $0.tables["points"] ?? [] })])
        }
    }

    /// CPU seconds (user, system) and wall seconds of a sweep of `count` empty configurations.
    public static func run(count: Int, jobs: Int) throws -> (user: Double, system: Double, wall: Double) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hh-sweep-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let e = Experiment(path: "(bench)", sha256: "", name: "sweep-bench", quick: false, study: Empty(count: count), parameters: [:])
        func cpu() -> (Double, Double) {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            return (Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6, Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6)
        }
        let (u0, s0) = cpu(), t0 = Date()
        try Sweep(experiment: e, out: dir, resume: false, jobs: jobs, command: ["bench", "sweep"], interactive: false, quiet: true).run()
        let (u1, s1) = cpu()
        return (u1 - u0, s1 - s0, Date().timeIntervalSince(t0))
    }

    public static func render(count: Int, jobs: Int, _ r: (user: Double, system: Double, wall: Double)) -> String {
        "benchmark,configurations,jobs,cpu_user_s,cpu_system_s,cpu_total_s,wall_s,cpu_per_configuration_us\n"
            + "sweep bookkeeping,\(count),\(jobs),\(r.user),\(r.system),\(r.user + r.system),\(r.wall),\((r.user + r.system) / Double(count) * 1e6)\n"
    }
}
