import ConclaveCrypto

/// Offline verification of a privacy ledger: the hash chain, every signature and co-signature, every
/// checkpoint's signature and Merkle root, the filter replayed entry by entry (never exceeded), and every
/// charge recomputed from its recorded mechanism (stored ≥ recomputed). Any edit, deletion, reordering or
/// truncation below a signed checkpoint fails a check that names the first entry at fault.
public enum LedgerVerifier {
    public struct Check: Sendable, Equatable {
        public let name: String
        public let passed: Bool
        /// What was checked, or the first failure (naming the entry).
        public let detail: String

        public init(name: String, passed: Bool, detail: String) {
            self.name = name
            self.passed = passed
            self.detail = detail
        }
    }

    /// `keys`: signer name → Ed25519 public key ("coordinator", "silo/<id>", "privacy-officer/<name>").
    /// `rounds` (from an export): also checks every budgeted release has its charge and every charge its round.
    public static func verify(entries: [SignedEntry], checkpoints: [LedgerCheckpoint], keys: [String: [UInt8]],
                              rounds: [CommittedRound]? = nil) -> [Check] {
        var checks = [chain(entries), signatures(entries, keys), replay(entries), checkpointsCheck(checkpoints, entries, keys)]
        if let rounds { checks.append(roundsCheck(entries.map(\.entry), rounds)) }
        return checks
    }

    /// Every charge belongs to a round the coordinator committed (with that model version, holding that silo);
    /// every committed DP round holds a charge for each silo whose data had a registered budget of the run's unit.
    static func roundsCheck(_ entries: [LedgerEntry], _ rounds: [CommittedRound]) -> Check {
        let bySHA = Dictionary(rounds.map { ("\($0.run)/\($0.round)/\($0.modelSHA256)", $0) }, uniquingKeysWith: { a, _ in a })
        var charged = Set<String>()
        for e in entries where e.kind == .charge {
            let key = "\(e.run ?? "")/\(e.round ?? 0)/\(e.modelSHA256 ?? "")"
            guard let r = bySHA[key], r.discarded || r.silos.contains(e.budget.silo) else {
                return Check(name: "rounds", passed: false, detail: "entry \(e.seq) charges \(e.budget) for run \(e.run ?? "?") round \(e.round ?? 0), but no committed round of that model version released its data")
            }
            charged.insert("\(key)/\(e.budget.silo)")
        }
        var expected = 0
        for r in rounds where !r.discarded {
            guard let unit = r.unit else { continue }
            for silo in r.silos {
                let budgeted = entries.contains { $0.kind == .registration && $0.budget.silo == silo && $0.budget.unit == unit && $0.time <= r.committedAt }
                guard budgeted else { continue }
                expected += 1
                guard charged.contains("\(r.run)/\(r.round)/\(r.modelSHA256)/\(silo)") else {
                    return Check(name: "rounds", passed: false, detail: "round \(r.round) of run \(r.run) released the data of silo '\(silo)', which has a registered \(unit) budget, without a charge in the ledger")
                }
            }
        }
        return Check(name: "rounds", passed: true, detail: "\(rounds.count) committed rounds: each of the \(expected) budgeted releases has its charge, and every charge its round")
    }

    public static func chain(_ entries: [SignedEntry]) -> Check {
        var previous = ""
        for (i, signed) in entries.enumerated() {
            let e = signed.entry
            guard e.seq == i else { return Check(name: "chain", passed: false, detail: "entry at position \(i) has sequence \(e.seq): an entry was deleted, duplicated or moved") }
            guard e.previous == previous else { return Check(name: "chain", passed: false, detail: "entry \(i) does not follow entry \(i - 1) (previous-hash mismatch): an entry was edited, removed or reordered") }
            previous = e.hashHex
        }
        return Check(name: "chain", passed: true, detail: "\(entries.count) entries, each linked to the one before")
    }

    static func signatures(_ entries: [SignedEntry], _ keys: [String: [UInt8]]) -> Check {
        func valid(_ signer: String, _ signed: SignedEntry) -> Bool {
            guard let key = keys[signer], let signature = signed.signatures[signer] else { return false }
            return Ed25519.verify(signature: signature, message: signed.entry.canonicalBytes, publicKey: key)
        }
        var cosigned = 0
        for signed in entries {
            let e = signed.entry
            guard valid("coordinator", signed) else {
                return Check(name: "signatures", passed: false, detail: "entry \(e.seq) (\(e.kind.rawValue), \(e.budget)): the coordinator's signature does not verify")
            }
            switch e.kind {
            case .registration, .amendment:
                guard let actor = e.actor, valid("privacy-officer/\(actor)", signed) else {
                    return Check(name: "signatures", passed: false, detail: "entry \(e.seq) (\(e.kind.rawValue), \(e.budget)): no valid signature of privacy officer '\(e.actor ?? "?")'")
                }
            case .charge:
                guard valid("silo/\(e.budget.silo)", signed) else {
                    return Check(name: "signatures", passed: false, detail: "entry \(e.seq) (charge, \(e.budget)): silo '\(e.budget.silo)' did not co-sign it")
                }
                cosigned += 1
            case .refusal:
                break
            }
        }
        return Check(name: "signatures", passed: true, detail: "\(entries.count) coordinator signatures, \(cosigned) silo co-signatures, officers' on every registration and amendment")
    }

    /// The filter replayed from the entries; each charge's cost recomputed from its mechanism.
    static func replay(_ entries: [SignedEntry]) -> Check {
        var ledger = PrivacyLedger()
        var charges = 0
        for signed in entries {
            let e = signed.entry
            if e.kind == .charge || e.kind == .refusal {
                guard let mechanism = e.mechanism, let stored = e.increment, let filter = ledger.filters[e.budget] else {
                    return Check(name: "charges", passed: false, detail: "entry \(e.seq) (\(e.kind.rawValue), \(e.budget)): no mechanism, cost or registered budget")
                }
                do { try mechanism.validate() } catch {
                    return Check(name: "charges", passed: false, detail: "entry \(e.seq): its mechanism cannot be costed: \(error.message)")
                }
                let recomputed = filter.increment(mechanism.rdp)
                let tolerance = { (x: Double) in 1e-9 * max(1, abs(x)) }
                let covers = stored.atOrder >= recomputed.atOrder - tolerance(recomputed.atOrder)
                    && stored.byOrder.count == recomputed.byOrder.count
                    && zip(stored.byOrder, recomputed.byOrder).allSatisfy { $0 >= $1 - tolerance($1) }
                guard covers else {
                    return Check(name: "charges", passed: false, detail: "entry \(e.seq) (\(e.budget), run \(e.run ?? "?") round \(e.round ?? 0)): stored cost \(stored.atOrder) is below the recomputed \(recomputed.atOrder)")
                }
                if e.kind == .charge { charges += 1 }
            }
            do { try ledger.apply(e) } catch {
                return Check(name: "charges", passed: false, detail: "entry \(e.seq): \(error.message)")
            }
            ledger.appendForReplay(signed)
        }
        return Check(name: "charges", passed: true, detail: "\(charges) charges recomputed from their parameters; no budget's filter was exceeded")
    }

    static func checkpointsCheck(_ checkpoints: [LedgerCheckpoint], _ entries: [SignedEntry], _ keys: [String: [UInt8]]) -> Check {
        let leaves = entries.map { MerkleTree.leafHash($0.entry.canonicalBytes) }
        for c in checkpoints {
            guard let key = keys["coordinator"], let signature = c.signatures["coordinator"],
                  Ed25519.verify(signature: signature, message: c.body, publicKey: key) else {
                return Check(name: "checkpoints", passed: false, detail: "checkpoint of size \(c.size): the coordinator's signature does not verify")
            }
            for (signer, signature) in c.signatures where signer != "coordinator" {
                guard let key = keys[signer], Ed25519.verify(signature: signature, message: c.body, publicKey: key) else {
                    return Check(name: "checkpoints", passed: false, detail: "checkpoint of size \(c.size): the co-signature of \(signer) does not verify")
                }
            }
            guard c.size >= 0 else {
                return Check(name: "checkpoints", passed: false, detail: "a checkpoint claims a negative size (\(c.size))")
            }
            guard c.size <= entries.count else {
                return Check(name: "checkpoints", passed: false, detail: "checkpoint of size \(c.size) was signed but the ledger holds \(entries.count) entries: it was truncated")
            }
            guard MerkleTree.root(leaves[0..<c.size]) == c.root else {
                return Check(name: "checkpoints", passed: false, detail: "checkpoint of size \(c.size): the Merkle root of entries 0–\(c.size - 1) differs from the signed one: one of them was changed")
            }
        }
        return Check(name: "checkpoints", passed: true, detail: "\(checkpoints.count) signed checkpoints match the entries' Merkle roots")
    }
}

extension PrivacyLedger {
    /// The verifier's replay appends what it applied, so hashes and sequence stay aligned.
    mutating func appendForReplay(_ signed: SignedEntry) {
        entries.append(signed)
    }
}

extension LedgerExport {
    /// Every check of `LedgerVerifier` on this export (its entries, checkpoints, keys and rounds).
    public func verify() -> [LedgerVerifier.Check] {
        LedgerVerifier.verify(entries: signedEntries, checkpoints: ledgerCheckpoints, keys: publicKeys, rounds: rounds)
    }
}
