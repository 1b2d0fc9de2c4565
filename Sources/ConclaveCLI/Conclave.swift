import ArgumentParser
import Foundation

/// `conclave`: the operator's and ML engineer's command line.
@main
struct Conclave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave",
        abstract: "Privacy-preserving federated learning: runs, models, demo and benchmarks.",
        subcommands: [RunCommand.self, ModelCommand.self, PrivacyCommand.self, BudgetCommand.self, CACommand.self, SiloCommand.self, UserCommand.self,
                      DemoCommand.self, BenchCommand.self])

    /// As ArgumentParser's, but usage errors exit with status 2 (scripts test for it) rather than 64.
    static func main() async {
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
