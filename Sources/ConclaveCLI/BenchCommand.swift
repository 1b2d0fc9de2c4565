import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure this machine: training throughput and aggregation cost.",
        subcommands: [TrainingBench.self, AggregationBench.self])
}
