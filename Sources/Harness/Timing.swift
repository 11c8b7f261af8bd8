/// Wall-clock timing for benchmarks and command summaries.
extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

public enum Timing {
    /// Median over `trials` runs of `body`, in seconds (after one untimed warm-up
    /// run when `warmUp`).
    public static func median(trials: Int, warmUp: Bool = false, _ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        if warmUp { try body() }
        var samples: [Double] = []
        for _ in 0..<trials { samples.append(try clock.measure(body).seconds) }
        samples.sort()
        return samples[samples.count / 2]
    }
}
