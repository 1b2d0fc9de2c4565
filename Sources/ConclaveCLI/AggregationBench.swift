import ArgumentParser
import ConclaveFederation
import ConclaveLearning
import Foundation

/// The coordinator's aggregation through the real round state machine: time and peak memory for N silos'
/// updates of D parameters, each generated, submitted and dropped in turn as they would arrive over the wire.
struct AggregationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "aggregation", abstract: "Time and memory of aggregating silo updates.")
    @Option(help: "Number of silos.") var silos = 10
    @Option(help: "Parameters per update.") var params = 1_000_000
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard silos >= 1 else { throw ValidationError("--silos must be at least 1") }
        guard params >= 20 else { throw ValidationError("--params must be at least 20") }
    }

    func run() throws {
        // A logistic-regression model with `params` parameters: (inputs + 1) × 10 ≈ params.
        let inputs = max(1, params / 10 - 1)
        let model = try ModelSpec(architecture: .logreg, inputFeatures: inputs, hidden: [], classCount: 10)
        let spec = try RunSpec(name: "bench", model: model, rounds: 1, training: TrainingConfig(), minSilos: silos)
        var machine = RoundStateMachine(runID: "bench", spec: spec, globalWeights: [Float](repeating: 0, count: model.parameterCount))
        let infos = (1...silos).map { SiloInfo(id: "silo-\($0)", examples: 1000, features: inputs, classes: 10) }
        for info in infos { _ = try machine.requestWork(from: info, now: 0) }
        for info in infos { _ = try machine.requestWork(from: info, now: 0) }
        let baseline = Self.peakRSS()
        var rng = SeededGenerator(seed: 3)
        var aggregate = 0.0
        let clock = ContinuousClock()
        for info in infos {
            let update = (0..<model.parameterCount).map { _ in Float(rng.nextUnitOpen() - 0.5) }
            let d = try clock.measure {
                _ = try machine.submit(from: info, runID: "bench", round: 1, update: update, trainLoss: 0, trainSeconds: 0, now: 1)
            }
            aggregate += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        guard case .committing = machine.state else { throw ValidationError("round did not close") }
        let peak = Self.peakRSS()
        let modelBytes = Double(model.parameterCount * 4)
        let result: [String: Any] = [
            "silos": silos, "params": model.parameterCount, "aggregate_seconds": aggregate,
            "model_mib": modelBytes / 1_048_576, "baseline_rss_mib": baseline / 1_048_576, "peak_rss_mib": peak / 1_048_576,
            "growth_in_models": (peak - baseline) / modelBytes,
        ]
        if json { printJSON(result); return }
        print(String(format: "%d silos × %d parameters: aggregation %.3f s (%.1f ms per update)", silos,
                     model.parameterCount, aggregate, aggregate / Double(silos) * 1000))
        print(String(format: "peak RSS %.1f MiB (baseline %.1f MiB): grew by %.1f model sizes; %d copies would be %.0f MiB",
                     peak / 1_048_576, baseline / 1_048_576, (peak - baseline) / modelBytes, silos,
                     Double(silos) * modelBytes / 1_048_576))
    }

    /// Peak resident set size of this process so far, in bytes.
    static func peakRSS() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(0), &usage)  // RUSAGE_SELF
        return Double(usage.ru_maxrss) * 1024
    }
}
