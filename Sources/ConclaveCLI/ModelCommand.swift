import ArgumentParser
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclaveAdminClient
import ConclaveSupport
import ConclaveWireConversions
import ConclaveWire
import ConclavePrivacy
import Foundation
import GRPCCore
import SwiftProtobuf

struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Trained models.", subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a run's trained weights to a file.")
        @Option(name: .long, help: "Run id.") var run: String
        @Option(name: .long, help: "Output format (safetensors).") var format: String = "safetensors"
        @Option(name: .long, help: "Output path.") var out: String
        @Option(name: .long, help: "Round to export (default: the newest committed round).") var round: Int?
        @Option(name: .long, help: "Also write the model's proof of charge (its release entries with inclusion proofs in a signed ledger checkpoint) to this file.")
        var proofOfCharge: String?
        @OptionGroup var target: CoordinatorOption

        func validate() throws {
            guard format == "safetensors" else { throw ValidationError("--format: only 'safetensors' is supported, got '\(format)'") }
            if let round, round < 1 { throw ValidationError("--round must be at least 1") }
        }

        func run() async throws {
            let exported = try await ModelExport.fetch(run: run, round: round, target: target)
            try ModelExport.write(exported, to: out)
            print("wrote \(out): run \(run) round \(exported.round), \(exported.spec.summary), \(exported.weights.count) parameters")
            if let proofOfCharge {
                let proof: ProofOfCharge
                do { proof = try ProofOfCharge.make(run: run, round: exported.round, export: try await fetchExport(target)) } catch let error as PrivacyError {
                    throw CLIError("no proof of charge: \(error.message)")
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                do { try encoder.encode(proof).write(to: URL(fileURLWithPath: proofOfCharge), options: .atomic) } catch {
                    throw CLIError("cannot write \(proofOfCharge): \(error.localizedDescription)")
                }
                print("wrote \(proofOfCharge): \(proof.entries.count) charges in the checkpoint of size \(proof.checkpoint.size)")
            }
        }
    }
}

enum ModelExport {
    struct Exported: Sendable {
        var spec: ModelSpec
        var round: Int
        var runID: String
        var weights: [Float]
    }

    static func fetch(run: String, round: Int?, target: CoordinatorOption) async throws -> Exported {
        try await callAdmin(target) { admin in
            let request = Conclave_V1_ExportModelRequest.with { $0.runID = run; $0.round = UInt32(round ?? 0) }
            return try await admin.exportModel(request) { response in
                var header: Conclave_V1_ModelHeader?
                var spec: ModelSpec?
                var assembler: WeightsAssembler?
                for try await chunk in response.messages {
                    switch chunk.kind {
                    case .header(let h):
                        header = h
                        spec = try ModelSpec(proto: h.model)
                        assembler = try WeightsAssembler(total: h.totalValues, expected: spec!.parameterCount, what: "model")
                    case .weights(let w):
                        guard assembler != nil else { throw FederationError(.invalidArgument, "weights before header") }
                        try assembler!.add(w)
                    case .none: continue
                    }
                }
                guard let header, let spec, let assembler else { throw FederationError(.invalidArgument, "empty export stream") }
                let weights = try assembler.finish()
                guard SHA256.hex(floats: weights) == header.weightsSha256 else {
                    throw FederationError(.invalidArgument, "exported weights fail their SHA-256 check")
                }
                return Exported(spec: spec, round: Int(header.round), runID: run, weights: weights)
            }
        }
    }

    static func write(_ e: Exported, to path: String) throws {
        try Safetensors.write(e.spec.tensors(from: e.weights),
                              metadata: ["run": e.runID, "round": String(e.round), "model": e.spec.summary,
                                         "format": "pt", "producer": "conclave"],
                              to: path)
    }
}
