import ArgumentParser
import ConclaveTensor
import Foundation

/// `conclave`: the operator's and ML engineer's command line.
@main
struct Conclave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave",
        abstract: "Privacy-preserving federated learning: runs, models, demo and benchmarks.",
        subcommands: [RunCommand.self, ModelCommand.self, PrivacyCommand.self, BudgetCommand.self, CACommand.self, SiloCommand.self, UserCommand.self,
                      DemoCommand.self, BenchCommand.self, BLASCommand.self])

    /// As ArgumentParser's, but usage errors exit with status 2 (scripts test for it) rather than 64.
    static func main() async {
        // The commands that do dense math run on the best OpenBLAS kernels for this CPU (may re-execute once).
        if let command = CommandLine.arguments.dropFirst().first, ["bench", "demo", "blas"].contains(command) {
            let line = BLASKernel.ensureBestKernels() + "\n"
            if command != "blas" {
                (CommandLine.arguments.contains("--json") ? FileHandle.standardError : FileHandle.standardOutput).write(Data(line.utf8))
            }
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
