import ArgumentParser
import ConclaveIdentity
import ConclaveConfig
import ConclaveAdminClient
import ConclaveSupport
import ConclaveWireConversions
import ConclaveWire
import Foundation
import GRPCCore
import SwiftProtobuf
import GRPCCore

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Define and follow training runs.",
        subcommands: [Start.self, Status.self, List.self, Resume.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a run from a run spec (TOML).")
        @Option(name: .long, help: "Path to run.toml.") var spec: String
        @OptionGroup var target: CoordinatorOption
        @Flag(name: .long, help: "Print the run as JSON.") var json = false

        func run() async throws {
            let text: String
            do {
                text = try ConfigFile.text(at: spec)
                _ = try RunSpecFile.parse(text, source: spec)  // fail fast, naming the file and key
            } catch { throw ValidationError(error.message) }
            let info = try await callAdmin(target) { admin in
                try await admin.startRun(.with { $0.specToml = text; $0.specName = spec })
            }
            if json { printJSON(RunView.json(info)) } else { print("started \(info.runID) (\(info.name)): \(info.status)") }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run and its rounds (default: the newest run).")
        @Argument(help: "Run id.") var id: String?
        @OptionGroup var target: CoordinatorOption
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let runID = id ?? ""
            let info = try await callAdmin(target) { admin in try await admin.getRun(.with { $0.runID = runID }) }
            if json { printJSON(RunView.json(info)) } else { print(RunView.text(info)) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a run that needs repair (its newest checkpoint is missing or corrupt) from an earlier round.",
            discussion: "Rounds after --from-round are discarded and run again; the privacy they spent stays charged.")
        @Argument(help: "Run id.") var id: String
        @Option(name: .customLong("from-round"), help: "The committed round whose checkpoint to continue from (0: start over).")
        var fromRound: Int
        @OptionGroup var target: CoordinatorOption
        @Flag(name: .long, help: "Print the run as JSON.") var json = false

        func validate() throws {
            guard fromRound >= 0, fromRound <= Int(UInt32.max) else { throw ValidationError("--from-round must be 0 or a round number") }
        }

        func run() async throws {
            let info = try await callAdmin(target) { admin in
                try await admin.resumeRun(.with { $0.runID = id; $0.fromRound = UInt32(fromRound) })
            }
            if json { printJSON(RunView.json(info)) } else {
                print("resumed \(info.runID) from round \(fromRound): \(info.status), next round \(info.roundsCompleted + 1)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, oldest first.")
        @OptionGroup var target: CoordinatorOption
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let reply = try await callAdmin(target) { admin in try await admin.listRuns(.init()) }
            if json {
                printJSON(["runs": reply.runs.map(RunView.json)])
                return
            }
            print("RUN           STATUS     ROUNDS   MODEL                 NAME")
            for r in reply.runs {
                let rounds = "\(r.roundsCompleted)/\(r.roundsPlanned)"
                print(r.runID.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + r.status.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + rounds.padding(toLength: 9, withPad: " ", startingAt: 0)
                      + RunView.model(r.model).padding(toLength: 22, withPad: " ", startingAt: 0) + r.name)
            }
        }
    }
}

/// Calls the admin API, turning transport and RPC failures into one readable line.
func callAdmin<T: Sendable>(_ option: CoordinatorOption,
                            _ body: @Sendable @escaping (Conclave_V1_Admin.Client<HTTP2ClientTransportPosix>) async throws -> T) async throws -> T {
    let address = try option.address()
    let identity = try option.identityDirectory()
    do {
        return try await AdminClient.with(address, identity: identity, body)
    } catch let error as RPCError {
        printError("error: \(describe(error, address: address, identity: identity))")
        throw ExitCode.failure
    }
}

/// One readable line for a failed call; an unreachable coordinator gets the likely reason.
func describe(_ error: RPCError, address: HostPort, identity: IdentityDirectory?) -> String {
    guard error.code == .unavailable else { return error.message }
    let hint = identity == nil
        ? " (a coordinator serving mutual TLS needs --identity DIR or $CONCLAVE_IDENTITY)"
        : " (if it serves mutual TLS, it may have refused this certificate: revoked, expired or from another federation)"
    return "cannot reach the coordinator at \(address): \(error.message)\(hint)"
}

enum RunView {
    static func model(_ m: Conclave_V1_ModelSpec) -> String {
        "\(m.architecture) " + ([m.inputFeatures] + m.hidden + [m.numClasses]).map(String.init).joined(separator: "-")
    }

    static func json(_ r: Conclave_V1_RunInfo) -> [String: Any] {
        [
            "run_id": r.runID, "name": r.name, "status": r.status, "rounds_planned": Int(r.roundsPlanned),
            "rounds_completed": Int(r.roundsCompleted), "model": model(r.model), "message": r.message,
            "min_silos": Int(r.minSilos), "privacy": r.privacy,
            "rounds": r.rounds.map { round -> [String: Any] in
                var out: [String: Any] = [
                    "round": Int(round.round), "silos": round.silos, "num_examples": Int(round.numExamples),
                    "test_accuracy": jsonNumber(round.testAccuracy), "test_loss": jsonNumber(round.testLoss),
                    "train_loss": jsonNumber(round.trainLoss), "seconds": round.seconds,
                    "checkpoint_sha256": round.checkpointSha256, "secure_aggregation": round.secure]
                if round.epsilon.isFinite {
                    out["epsilon"] = round.epsilon
                    out["delta"] = round.delta
                }
                if !round.siloEpsilon.isEmpty { out["silo_epsilon"] = round.siloEpsilon }
                if round.clipNorm > 0 { out["clip_norm"] = round.clipNorm }
                if round.secure {
                    out["unmasked"] = Int(round.unmasked)
                    out["dropped"] = Int(round.dropped)
                }
                return out
            },
            "abandoned": r.abandoned.map { a -> [String: Any] in
                ["round": Int(a.round), "status": a.status, "finished_at": a.finishedAt, "reason": a.reason]
            },
        ]
    }

    static func text(_ r: Conclave_V1_RunInfo) -> String {
        var lines = ["run \(r.runID) (\(r.name)): \(r.status), \(r.roundsCompleted)/\(r.roundsPlanned) rounds, \(model(r.model))"]
        if !r.message.isEmpty { lines.append("  \(r.message)") }
        if !r.privacy.isEmpty { lines.append("  privacy: \(r.privacy)") }
        for round in r.rounds { lines.append("  " + roundLine(round, of: r.roundsPlanned)) }
        for a in r.abandoned { lines.append("  round \(a.round) attempt abandoned: \(a.reason)") }
        return lines.joined(separator: "\n")
    }

    static func roundLine(_ round: Conclave_V1_RoundInfo, of planned: UInt32) -> String {
        let acc = round.testAccuracy.isFinite ? String(format: "%.4f", round.testAccuracy) : "n/a"
        let loss = round.testLoss.isFinite ? String(format: "%.4f", round.testLoss) : "n/a"
        let number = String(round.round).leftPadded(to: String(planned).count)
        let silos = round.secure ? "unmasked \(round.unmasked)  dropped \(round.dropped)" : "silos \(round.silos.count)"
        var privacy = round.epsilon.isFinite ? String(format: "  ε %.3f (δ %g)", round.epsilon, round.delta) : ""
        if !round.siloEpsilon.isEmpty {
            // Record mode: each silo's own ε; the round's is the largest.
            privacy = String(format: "  ε per silo (δ %g):", round.delta)
                + round.siloEpsilon.sorted { $0.key < $1.key }.map { String(format: " %@ %.3f", $0.key, $0.value) }.joined()
        }
        return "round \(number)/\(planned)  \(silos)  test_accuracy \(acc)  test_loss \(loss)  "
            + String(format: "%.1fs", round.seconds) + privacy
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
