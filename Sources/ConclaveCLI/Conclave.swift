import ArgumentParser

/// `conclave`: the operator's and ML engineer's command line.
@main
struct Conclave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave",
        abstract: "Privacy-preserving federated learning: runs, models, demo and benchmarks.",
        subcommands: [RunCommand.self, ModelCommand.self, DemoCommand.self, BenchCommand.self])
}

