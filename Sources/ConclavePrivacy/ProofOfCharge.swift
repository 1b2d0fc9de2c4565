import ConclaveCrypto
public import Foundation

/// What a released model carries to show its release was charged (`conclave model export --proof-of-charge`):
/// the ledger's charge entries for that run and round, each with its signatures and its RFC 9162 inclusion
/// proof in a checkpoint the coordinator signed (and silos co-signed), plus the public keys. Checked offline by
/// `conclave budget verify --proof` (in the manner of a C2SP tlog-proof).
public struct ProofOfCharge: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var entry: LedgerEntry
        public var signatures: [String: Data]
        public var inclusionProof: [Data]
    }

    public var format = "conclave-proof-of-charge-v1"
    public var run: String
    public var round: Int
    public var checkpoint: LedgerExport.Checkpoint
    public var entries: [Item]
    public var keys: [String: Data]

    /// The proof for `run`/`round` from a ledger export, against its newest checkpoint that holds the entries.
    public static func make(run: String, round: Int, export: LedgerExport) throws(PrivacyError) -> ProofOfCharge {
        let signed = export.signedEntries
        let charges = signed.filter { $0.entry.kind == .charge && $0.entry.run == run && $0.entry.round == round }
        guard !charges.isEmpty else { throw PrivacyError("the ledger holds no charge for run \(run) round \(round)") }
        let needed = (charges.map(\.entry.seq).max() ?? 0) + 1
        guard let checkpoint = export.checkpoints.filter({ $0.size >= needed }).max(by: { $0.size < $1.size }) else {
            throw PrivacyError("no signed checkpoint covers the charges of run \(run) round \(round) yet (the silos co-sign within seconds; try again)")
        }
        let leaves = signed[0..<checkpoint.size].map { MerkleTree.leafHash($0.entry.canonicalBytes) }
        return ProofOfCharge(run: run, round: round, checkpoint: checkpoint, entries: charges.map {
            Item(entry: $0.entry, signatures: $0.signatures.mapValues { Data($0) },
                 inclusionProof: MerkleTree.inclusionProof(index: $0.entry.seq, leaves).map { Data($0) })
        }, keys: export.keys)
    }

    /// One line per check; a failure names the entry.
    public func verify() -> [LedgerVerifier.Check] {
        var checks = [LedgerVerifier.Check]()
        let c = LedgerCheckpoint(origin: checkpoint.origin, size: checkpoint.size, root: Array(checkpoint.root),
                                 signatures: checkpoint.signatures.mapValues { Array($0) })
        let signers = c.signatures.filter { signer, signature in
            keys[signer].map { Ed25519.verify(signature: signature, message: c.body, publicKey: Array($0)) } ?? false
        }.keys.sorted()
        checks.append(.init(name: "checkpoint", passed: signers.contains("coordinator"),
                            detail: signers.contains("coordinator") ? "size \(c.size), signed by \(signers.joined(separator: ", "))" : "the coordinator's signature on the checkpoint does not verify"))
        guard c.size >= 0, !entries.isEmpty else {
            checks.append(.init(name: "entries", passed: false, detail: "the proof holds no charge, or a checkpoint of negative size"))
            return checks
        }
        for item in entries {
            let e = item.entry
            guard e.seq >= 0, e.kind == .charge, e.run == run, e.round == round else {
                checks.append(.init(name: "entries", passed: false, detail: "entry \(e.seq) is not a charge of run \(run) round \(round)"))
                return checks
            }
            guard MerkleTree.verifyInclusion(index: UInt64(e.seq), size: UInt64(c.size), leafHash: MerkleTree.leafHash(e.canonicalBytes),
                                             proof: item.inclusionProof.map { Array($0) }, root: c.root) else {
                checks.append(.init(name: "entries", passed: false, detail: "entry \(e.seq) is not in the checkpoint of size \(c.size)"))
                return checks
            }
            for signer in ["coordinator", "silo/\(e.budget.silo)"] {
                guard let key = keys[signer], let sig = item.signatures[signer], Ed25519.verify(signature: Array(sig), message: e.canonicalBytes, publicKey: Array(key)) else {
                    checks.append(.init(name: "entries", passed: false, detail: "entry \(e.seq): the signature of \(signer) is missing or does not verify"))
                    return checks
                }
            }
        }
        checks.append(.init(name: "entries", passed: true,
                            detail: "\(entries.count) charges of run \(run) round \(round) (\(entries.map(\.entry.budget.description).joined(separator: ", "))), each in the checkpoint and signed by the coordinator and its silo"))
        return checks
    }
}
