import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure this machine: training throughput, aggregation and secure aggregation cost.",
        subcommands: [TrainingBench.self, DPSGDBench.self, AggregationBench.self, SecAggBench.self, PrivacySimulationBench.self,
                      DriverBenchLauncher.self, TLSBenchLauncher.self])
}
