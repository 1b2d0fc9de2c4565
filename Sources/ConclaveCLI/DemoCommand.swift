import ArgumentParser
import ConclaveConfig
import ConclaveAdminClient
import ConclaveSupport
import ConclaveWireConversions
import ConclaveWire
import ConclavePrivacy
import Foundation
import GRPCCore
import SwiftProtobuf

/// `conclave demo`: a whole federation on this machine — one coordinator and N agent processes on loopback,
/// Fashion-MNIST split non-IID across the silos, FedAvg to the end, the final model written as safetensors.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run a whole federated training on this machine.")

    @Option(help: "Number of silos (agent processes).") var silos = 5
    @Option(help: "Training rounds.") var rounds = 30
    @Option(help: "Local epochs per round (default 2; 1 with --privacy record).") var localEpochs: Int?
    @Option(help: "Hidden layer widths, comma-separated (784-…-10 MLP).") var hidden = "128"
    @Option(help: "Dirichlet α of the label split (smaller is more skewed).") var alpha = 0.5
    @Option(help: "Seed for the split, the initial model and shuffling.") var seed = 42
    @Option(help: "Work directory (kept afterwards).") var workdir = "demo-work"
    @Option(help: "Directory holding Fashion-MNIST's IDX files.") var dataDir = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Give up after this many seconds.") var timeout = 1800.0
    @Flag(inversion: .prefixedNo, help: "Secure aggregation: the coordinator sees only masked updates and their sum.")
    var secureAggregation = true
    @Option(help: ArgumentHelp("Differential privacy: record (DP-SGD in every silo), central (noise on the secure sum), distributed (noise shares added by the silos under secure aggregation), or none.",
                               valueName: "mode")) var privacy: DemoPrivacy = .none
    @Option(help: "Privacy budget ε (record: each silo's own; central: the run's), at δ = --delta.") var epsilon = 3.0
    @Option(help: "δ of the privacy guarantee.") var delta = 1e-5
    @Option(help: "Each silo's cross-run privacy budget ε (registered by a privacy officer before the run; with --privacy).") var budget = 8.0
    @Flag(help: "Print the summary as one JSON object (progress goes to standard error).") var json = false
    @Flag(help: "Plaintext gRPC with nobody authenticated (default: a federation CA and mutual TLS, every silo enrolled).")
    var insecure = false

    func validate() throws {
        guard budget > 0, budget.isFinite else { throw ValidationError("--budget must be a positive ε, got \(budget)") }
        guard silos >= 1, silos <= 64 else { throw ValidationError("--silos must be between 1 and 64") }
        guard silos >= 2 || !secureAggregation else {
            throw ValidationError("secure aggregation needs at least 2 silos; use --silos 2 or more, or --no-secure-aggregation")
        }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard (localEpochs ?? 1) >= 1 else { throw ValidationError("--local-epochs must be at least 1") }
        guard alpha > 0 else { throw ValidationError("--alpha must be positive") }
        guard hiddenWidths != nil else { throw ValidationError("--hidden must be positive integers, e.g. 128 or 256,128") }
        guard epsilon > 0, epsilon.isFinite else { throw ValidationError("--epsilon must be positive") }
        guard delta > 0, delta < 1 else { throw ValidationError("--delta must be in (0, 1)") }
        if privacy == .central || privacy == .distributed, !secureAggregation {
            throw ValidationError("--privacy \(privacy.rawValue) adds its noise through secure aggregation; drop --no-secure-aggregation")
        }
    }

    var hiddenWidths: [Int]? {
        let parts = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.map { $0! }
    }

    func run() async throws {
        let say: (String) -> Void = json ? { printError($0) } : { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let clock = ContinuousClock()
        let start = clock.now
        let setup = try DemoSetup(workdir: workdir, dataDir: dataDir, silos: silos, rounds: rounds,
                                  localEpochs: localEpochs ?? (privacy == .record ? 1 : 2), hidden: hiddenWidths!, alpha: alpha, seed: seed,
                                  secureAggregation: secureAggregation, privacy: privacy, epsilon: epsilon, delta: delta,
                                  insecure: insecure)
        say("conclave demo: \(silos) silos, Dirichlet α=\(alpha), \(rounds) rounds, mlp 784-\(hidden)-10, "
            + "secure aggregation \(secureAggregation ? "on" : "off"), privacy \(privacy.summary(epsilon: epsilon, delta: delta)), "
            + (insecure ? "PLAINTEXT (--insecure), " : "mutual TLS (federation CA in pki/, every silo enrolled by one-time bundle), ")
            + "work directory \(setup.root)")
        try setup.writeSiloData(log: say)
        let supervisor = ProcessSupervisor(logDirectory: setup.path("logs"))
        defer { supervisor.stopAll() }
        let address = try await setup.startCoordinator(supervisor)
        let target = try CoordinatorOption.parse(["--coordinator", address] + (setup.operatorIdentity.map { ["--identity", $0] } ?? []))
        try setup.writeAgentConfigs(coordinator: address)
        try await setup.enrolAgents(supervisor, coordinator: address, target: target)
        if !insecure { say("\(silos) silos enrolled: each made its own key and got a certificate for its id (bundles in silos/*/enrol.json)") }
        try await setup.registerBudgets(epsilon: budget, target: target, log: say)
        try setup.startAgents(supervisor)
        let specText = try String(contentsOfFile: setup.path("run.toml"), encoding: .utf8)
        let started = try await callAdmin(target) { admin in
            try await admin.startRun(.with { $0.specToml = specText; $0.specName = "run.toml" })
        }
        say("run \(started.runID) started; coordinator at \(address); logs in \(setup.path("logs"))")
        if !started.privacy.isEmpty { say("privacy: \(started.privacy)") }

        var shown = 0
        var info = started
        while true {
            try supervisor.checkAlive()
            let runID = started.runID
            info = try await callAdmin(target) { admin in try await admin.getRun(.with { $0.runID = runID }) }
            for round in info.rounds where Int(round.round) > shown {
                say(RunView.roundLine(round, of: info.roundsPlanned))
                shown = Int(round.round)
            }
            if ["completed", "failed", "cancelled", "budget-exhausted"].contains(info.status) { break }
            if (clock.now - start) > .seconds(timeout) {
                throw CLIError("demo timed out after \(Int(timeout)) s; see \(setup.path("logs"))")
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        guard info.status == "completed", let last = info.rounds.last else {
            throw CLIError("run \(info.runID) ended \(info.status): \(info.message)")
        }
        let ledgerLines = try await ledgerSummary(setup, target: target, say: say)
        let exported = try await ModelExport.fetch(run: info.runID, round: nil, target: target)
        let modelPath = setup.path("model.safetensors")
        try ModelExport.write(exported, to: modelPath)
        supervisor.stopAll()
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        var summary: [String: Any] = [
            "rounds": Int(info.roundsCompleted), "silos": silos, "test_accuracy": jsonNumber(last.testAccuracy),
            "test_loss": jsonNumber(last.testLoss), "seconds": (seconds * 10).rounded() / 10, "workdir": setup.root,
            "model": modelPath, "run_id": info.runID, "database": setup.path("coordinator.sqlite"),
            "secure_aggregation": secureAggregation,
            "dropped": info.rounds.reduce(0) { $0 + Int($1.dropped) },
            "privacy": privacy.rawValue,
        ]
        // The largest ε spent: the run's (central) or the worst silo's own (record), at δ.
        let spent = info.rounds.flatMap { [$0.epsilon] + Array($0.siloEpsilon.values) }.filter(\.isFinite).max()
        if privacy != .none {
            summary["epsilon"] = spent.map(jsonNumber) ?? NSNull()
            summary["delta"] = delta
        }
        if json {
            printJSON(summary)
        } else {
            say(String(format: "done: %d rounds, %d silos, test accuracy %.4f, %.1f s", Int(info.roundsCompleted), silos,
                       last.testAccuracy, seconds))
            if privacy != .none, let spent {
                say(String(format: "privacy: %@, ε = %.3f at δ = %g%@", privacy.rawValue, spent, delta,
                           privacy == .record ? " (the largest any silo spent on its own records)" : ""))
            }
            say("model: \(modelPath)\ndatabase: \(setup.path("coordinator.sqlite"))")
            for line in ledgerLines { say(line) }
        }
    }
}

extension DemoCommand {
    /// The budgets and `budget verify` after the run, once every silo co-signed its charges (it does while it
    /// waits, within seconds).
    func ledgerSummary(_ setup: DemoSetup, target: CoordinatorOption, say: (String) -> Void) async throws -> [String] {
        guard let officer = setup.officerIdentity else {
            return setup.insecure && setup.privacy != .none
                ? ["privacy ledger: not used with --insecure (no privacy officer can sign budgets over plaintext)"] : []
        }
        let reader = try CoordinatorOption.parse(["--coordinator", target.coordinator ?? "", "--identity", officer])
        var export = try await fetchExport(reader)
        for _ in 0..<100 {
            let unsigned = export.signedEntries.filter { $0.entry.kind == .charge && $0.signatures["silo/\($0.entry.budget.silo)"] == nil }
            if unsigned.isEmpty { break }
            try await Task.sleep(for: .milliseconds(300))
            export = try await fetchExport(reader)
        }
        var lines = ["budgets (conclave budget show):"]
        for b in try LedgerSummary.budgets(export.signedEntries.map(\.entry)) {
            lines.append(String(format: "  %@: cap ε ≤ %g at δ = %g, spent ε %.3f, remaining %.3f, %d releases in %d run(s), %@",
                                b.budget.description, b.epsilonCap, b.deltaCap, b.epsilonSpent, b.epsilonRemaining, b.releases, b.runs.count, b.status))
        }
        let checks = export.verify()
        lines.append("ledger (conclave budget verify): \(checks.allSatisfy(\.passed) ? "verified" : "FAILED")")
        for check in checks { lines.append("  \(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
        return lines
    }
}

/// The demo's privacy modes (the run spec's `[privacy] mode`, plus none).
enum DemoPrivacy: String, ExpressibleByArgument, CaseIterable {
    case none, record, central, distributed

    func summary(epsilon: Double, delta: Double) -> String {
        switch self {
        case .none: "off"
        case .record: String(format: "record (DP-SGD, ε ≤ %g per silo at δ = %g)", epsilon, delta)
        case .central: String(format: "central (DP-FedAvg, ε ≤ %g at δ = %g)", epsilon, delta)
        case .distributed: String(format: "distributed (ε ≤ %g at δ = %g)", epsilon, delta)
        }
    }
}
