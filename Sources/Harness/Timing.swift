import Studies            // Duration.seconds

/// Wall-clock timing for benchmarks and command summaries.
public enum Timing {
    /// Median over `trials` runs of `body`, in seconds (after one untimed warm-up
    /// run when `warmUp`).
    public static func median(trials: Int, warmUp: Bool = false, _ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        if warmUp { try body() }
        var samples: [Double] = []
        for _ in 0..<max(trials, 1) { samples.append(try clock.measure(body).seconds) }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// Medians over `trials` rounds in each of which every body runs once, in order,
    /// after one untimed warm-up round: bodies compared with each other (a ratio of
    /// their times) then see the same state of a shared machine.
    public static func interleavedMedians(trials: Int, _ bodies: [() throws -> Void]) throws -> [Double] {
        let clock = ContinuousClock()
        for body in bodies { try body() }
        var samples = [[Double]](repeating: [], count: bodies.count)
        for _ in 0..<max(trials, 1) {
            for (k, body) in bodies.enumerated() { samples[k].append(try clock.measure(body).seconds) }
        }
        return samples.map { $0.sorted()[$0.count / 2] }
    }
}
