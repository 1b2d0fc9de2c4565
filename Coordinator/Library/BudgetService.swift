import ConclaveFederation
import ConclaveIdentity
import ConclavePrivacy
public import ConclaveWire
import ConclaveWireConversions
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `Budget`: privacy officers register and amend budgets (their role is checked by the interceptor, their
/// signature here); officers and operators export the ledger.
public struct BudgetService: Conclave_V1_Budget.SimpleServiceProtocol {
    let driver: RunDriver

    public init(driver: RunDriver) { self.driver = driver }

    private func officer(_ context: ServerContext) throws -> String {
        guard let identity = context.peerIdentity, identity.role == .privacyOfficer else {
            throw RPCError(code: .failedPrecondition,
                message: "budgets are registered and amended by a privacy officer over mutual TLS; this coordinator serves plaintext or the caller has no officer certificate")
        }
        return identity.name
    }

    public func draft(request: Conclave_V1_BudgetDraftRequest, context: ServerContext) async throws -> Conclave_V1_BudgetDraftReply {
        let actor = try officer(context)
        guard let kind = LedgerEntry.Kind(rawValue: request.kind), kind == .registration || kind == .amendment else {
            throw RPCError(code: .invalidArgument, message: "kind must be 'registration' or 'amendment', got \(WireCheck.preview(request.kind))")
        }
        do {
            let entry = try await driver.draftBudgetEntry(kind: kind, budget: BudgetKey(silo: request.silo, dataset: request.dataset, unit: request.unit),
                                                          epsilon: request.epsilon, delta: request.delta, reason: request.reason, actor: actor)
            return .with { $0.entry = Data(entry.canonicalBytes) }
        } catch { throw error.rpcError }
    }

    public func append(request: Conclave_V1_BudgetAppendRequest, context: ServerContext) async throws -> Conclave_V1_BudgetAppendReply {
        let actor = try officer(context)
        do {
            let key = try await driver.officerSigningKey(actor)
            let seq = try await driver.appendOfficerEntry(Array(request.entry), signature: Array(request.signature), actor: actor, officerKey: key)
            return .with { $0.seq = UInt64(seq) }
        } catch { throw error.rpcError }
    }

    public func export(request: Conclave_V1_LedgerExportRequest, context: ServerContext) async throws -> Conclave_V1_LedgerExportReply {
        do {
            let export = try await driver.ledgerExport()
            let json: Data
            do { json = try export.encoded() } catch {
                throw RPCError(code: .internalError, message: "the privacy ledger cannot be encoded for export: \(error)")
            }
            return .with { $0.exportJson = json }
        } catch let error as FederationError { throw error.rpcError }
    }
}

extension BudgetService {
    public func plan(request: Conclave_V1_BudgetPlanRequest, context: ServerContext) async throws -> Conclave_V1_BudgetPlanReply {
        do {
            let (spec, lines) = try await driver.planRun(specTOML: request.specToml, source: request.specName.isEmpty ? "run spec" : request.specName)
            struct Plan: Encodable {
                let run: String
                let rounds: Int
                let fits: Bool
                let budgets: [BudgetPlanLine]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let plan = Plan(run: spec.name, rounds: spec.rounds, fits: !lines.isEmpty && lines.allSatisfy(\.fits), budgets: lines)
            return .with { $0.planJson = (try? encoder.encode(plan)) ?? Data() }
        } catch { throw error.rpcError }
    }
}

/// `Witness`: a silo (only as itself) checks the ledger's growth and co-signs it.
public struct WitnessService: Conclave_V1_Witness.SimpleServiceProtocol {
    let driver: RunDriver

    public init(driver: RunDriver) { self.driver = driver }

    private func check(_ silo: String, _ context: ServerContext) throws {
        do { _ = try WireCheck.name(silo, "silo id") } catch { throw error.rpcError }
        if let identity = context.peerIdentity, identity.name != silo {
            throw RPCError(code: .permissionDenied, message: "silo '\(identity.name)' cannot act for silo \(WireCheck.preview(silo))")
        }
    }

    public func sync(request: Conclave_V1_WitnessSyncRequest, context: ServerContext) async throws -> Conclave_V1_WitnessSyncReply {
        try check(request.siloID, context)
        guard request.cosignedSize <= UInt64(Int.max) else { throw RPCError(code: .invalidArgument, message: "cosigned_size is out of range") }
        do {
            let view = try await driver.witnessSync(silo: request.siloID, cosignedSize: Int(request.cosignedSize))
            return .with {
                $0.checkpointJson = (try? JSONEncoder().encode(view.checkpoint)) ?? Data()
                $0.consistencyProof = view.consistency.map { Data($0) }
                $0.coordinatorKey = Data(view.coordinatorKey)
                $0.entries = view.entries.map { e in .with { $0.entry = Data(e.entry.entry.canonicalBytes); $0.inclusionProof = e.proof.map { Data($0) } } }
            }
        } catch { throw error.rpcError }
    }

    public func cosign(request: Conclave_V1_WitnessCosignRequest, context: ServerContext) async throws -> Conclave_V1_WitnessCosignReply {
        try check(request.siloID, context)
        guard request.size <= UInt64(Int.max), request.entrySignatures.keys.allSatisfy({ $0 <= UInt64(Int.max) }) else {
            throw RPCError(code: .invalidArgument, message: "a size or sequence number is out of range")
        }
        do {
            try await driver.witnessCosign(silo: request.siloID, size: Int(request.size), checkpointSignature: Array(request.checkpointSignature),
                                           entrySignatures: Dictionary(uniqueKeysWithValues: request.entrySignatures.map { (Int($0.key), Array($0.value)) }))
            return .init()
        } catch { throw error.rpcError }
    }
}
