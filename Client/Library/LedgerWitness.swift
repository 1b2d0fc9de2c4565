import ConclaveCrypto
import ConclaveFederation
import ConclavePrivacy
import ConclaveSiloLedger
import ConclaveWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// The silo as a witness of the coordinator's ledger: it fetches the newest checkpoint, checks the
/// coordinator's signature (key pinned on first sight), the consistency proof from the last checkpoint it
/// co-signed, and the inclusion of each of its own entries; it compares every charge of its data with its own
/// ledger; only then it co-signs the checkpoint and its entries and keeps them (its budgets' registrations and
/// amendments set its filters). Any mismatch is refused, logged and left unsigned.
extension SiloLedger {
    struct WitnessResult: Sendable {
        let size: Int
        let cosigned: Int
    }

    func witness(_ client: Conclave_V1_Witness.Client<HTTP2ClientTransport.Posix>) async throws -> WitnessResult {
        let last = try storage { () throws(SiloLedgerError) in try store.lastWitnessed() }
        let reply = try await client.sync(.with { $0.siloID = siloID; $0.cosignedSize = UInt64(last?.size ?? 0) })
        guard let checkpoint = try? JSONDecoder().decode(LedgerCheckpoint.self, from: reply.checkpointJson) else {
            throw FederationError(.invalidArgument, "the coordinator's checkpoint is malformed")
        }
        let key = Array(reply.coordinatorKey)
        if let pinned = last?.coordinatorKey, pinned != key {
            throw FederationError(.permissionDenied, "the coordinator's ledger key changed since this silo last co-signed; refusing to co-sign")
        }
        guard let signature = checkpoint.signatures["coordinator"], Ed25519.verify(signature: signature, message: checkpoint.body, publicKey: key) else {
            throw FederationError(.invalidArgument, "the coordinator's signature on the checkpoint of size \(checkpoint.size) does not verify")
        }
        let oldSize = last?.size ?? 0
        guard checkpoint.size >= oldSize else {
            throw FederationError(.failedPrecondition, "the coordinator's ledger shrank from \(oldSize) to \(checkpoint.size) entries (truncated or forked)")
        }
        if let last, last.size > 0, checkpoint.size > last.size {
            guard MerkleTree.verifyConsistency(size1: UInt64(last.size), size2: UInt64(checkpoint.size), root1: last.root, root2: checkpoint.root,
                                               proof: reply.consistencyProof.map { Array($0) }) else {
                throw FederationError(.failedPrecondition, "the ledger of \(checkpoint.size) entries is not an extension of the one of \(last.size) this silo co-signed (a fork or an edit)")
            }
        } else if let last, checkpoint.size == last.size, checkpoint.root != last.root {
            throw FederationError(.failedPrecondition, "two checkpoints of size \(last.size) with different roots: the ledger was forked")
        }
        // Nothing new (or an empty ledger): nothing to co-sign.
        guard checkpoint.size > oldSize else { return WitnessResult(size: checkpoint.size, cosigned: 0) }
        let own = try storage { () throws(SiloLedgerError) in try store.charges() }.map(\.charge)
        var entries = [LedgerEntry](), signatures = [UInt64: Data]()
        for item in reply.entries {
            let bytes = Array(item.entry)
            guard let entry = try? JSONDecoder().decode(LedgerEntry.self, from: Data(bytes)), entry.canonicalBytes == bytes,
                  entry.budget.silo == siloID, entry.seq >= oldSize, entry.seq < checkpoint.size else {
                throw FederationError(.invalidArgument, "the coordinator sent a ledger entry that is not one of this silo's since its last co-signature")
            }
            guard MerkleTree.verifyInclusion(index: UInt64(entry.seq), size: UInt64(checkpoint.size), leafHash: MerkleTree.leafHash(bytes),
                                             proof: item.inclusionProof.map { Array($0) }, root: checkpoint.root) else {
                throw FederationError(.invalidArgument, "ledger entry \(entry.seq) is not in the checkpoint of size \(checkpoint.size)")
            }
            if entry.kind == .charge { try check(entry, against: own) }
            entries.append(entry)
            signatures[UInt64(entry.seq)] = Data(identity.sign(bytes))
        }
        _ = try await client.cosign(.with {
            $0.siloID = siloID
            $0.size = UInt64(checkpoint.size)
            $0.checkpointSignature = Data(identity.sign(checkpoint.body))
            $0.entrySignatures = signatures
        })
        try storage { () throws(SiloLedgerError) in
            // Every entry of its own is kept (its budgets' registrations and amendments set its filters; its
            // charges and refusals are what `budget verify --against` compares with a later export).
            try store.witnessed(.init(size: checkpoint.size, root: checkpoint.root, coordinatorKey: key), adopting: entries)
        }
        return WitnessResult(size: checkpoint.size, cosigned: entries.count)
    }

    /// A charge the coordinator recorded on this silo's data must match a release this silo charged itself,
    /// and cost no more than the silo charged (the silo prices the worst case, the coordinator the outcome).
    private func check(_ entry: LedgerEntry, against own: [SiloCharge]) throws(FederationError) {
        guard let mechanism = entry.mechanism, let run = entry.run, let round = entry.round else {
            throw FederationError(.invalidArgument, "ledger entry \(entry.seq) is a charge without its mechanism, run or round")
        }
        let mine = own.filter { $0.run == run && $0.round == round && $0.budget == entry.budget }
        guard !mine.isEmpty else {
            throw FederationError(.failedPrecondition, "ledger entry \(entry.seq) charges run \(run) round \(round) to \(entry.budget), but this silo never released data for it")
        }
        let covers = { (m: SiloCharge) in
            RenyiFilter.displayOrders.allSatisfy { m.mechanism.rdp(order: $0) >= mechanism.rdp(order: $0) * (1 - 1e-9) - 1e-12 }
        }
        guard mine.contains(where: covers) else {
            throw FederationError(.failedPrecondition, "ledger entry \(entry.seq) charges run \(run) round \(round) more than this silo charged itself for it")
        }
    }
}
