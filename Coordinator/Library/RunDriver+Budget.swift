import ConclaveCrypto
import ConclaveConfig
import ConclaveLearning
public import ConclaveFederation
public import ConclavePrivacy
import ConclaveStorage
import ConclaveSupport
import Foundation
import Logging

/// What privacy officers and silos do to the ledger: officers register and amend budgets (two steps: the
/// coordinator drafts the exact entry, the officer signs its bytes, the coordinator checks and appends it);
/// anyone allowed reads the export; silos fetch checkpoints with proofs and co-sign them.
extension RunDriver {
    /// The entry an officer is asked to sign. Nothing is stored.
    public func draftBudgetEntry(kind: LedgerEntry.Kind, budget: BudgetKey, epsilon: Double, delta: Double, reason: String,
                                 actor: String) throws(FederationError) -> LedgerEntry {
        try openLedger()
        for (what, name) in [("silo", budget.silo), ("dataset", budget.dataset)] {
            try WireCheck.name(name, what)
        }
        guard ["record", "silo"].contains(budget.unit) else {
            throw FederationError(.invalidArgument, "unit must be 'record' (one record of the dataset) or 'silo' (the silo's whole contribution), got \(WireCheck.preview(budget.unit))")
        }
        var copy = ledger
        let signer: PrivacyLedger.Signer = { _ in [:] }
        do {
            switch kind {
            case .registration:
                if copy.filters[budget] != nil {
                    throw FederationError(.alreadyExists, "a budget is already registered for \(budget); raise or lower its cap with `conclave budget amend`")
                }
                return try copy.register(budget, epsilon: epsilon, delta: delta, actor: actor, time: WallClock.now(), sign: signer).entry
            case .amendment:
                guard copy.filters[budget] != nil else { throw FederationError(.notFound, "no budget is registered for \(budget)") }
                guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, reason.utf8.count <= 1000 else {
                    throw FederationError(.invalidArgument, "an amendment needs a reason (1 to 1000 bytes): it is shown in the report")
                }
                return try copy.amend(budget, epsilon: epsilon, reason: reason, actor: actor, time: WallClock.now(), sign: signer).entry
            case .charge, .refusal:
                throw FederationError(.invalidArgument, "only registrations and amendments are drafted for officers")
            }
        } catch let error as FederationError {
            throw error
        } catch let error as PrivacyError {
            throw FederationError(.invalidArgument, error.message)
        } catch {
            throw FederationError(.invalidArgument, "\(error)")
        }
    }

    /// Appends an officer's signed registration or amendment if it still continues the ledger.
    public func appendOfficerEntry(_ bytes: [UInt8], signature: [UInt8], actor: String, officerKey: [UInt8]?) throws(FederationError) -> Int {
        try openLedger()
        guard let entry = try? JSONDecoder().decode(LedgerEntry.self, from: Data(bytes)), entry.canonicalBytes == bytes else {
            throw FederationError(.invalidArgument, "the entry is not a ledger entry in canonical form (send the drafted bytes unchanged)")
        }
        guard entry.kind == .registration || entry.kind == .amendment else {
            throw FederationError(.invalidArgument, "entry \(entry.seq) is a \(entry.kind.rawValue); officers append registrations and amendments")
        }
        guard entry.actor == actor else {
            throw FederationError(.invalidArgument, "entry \(entry.seq) names '\(entry.actor ?? "")' as its officer, but the caller is '\(actor)'")
        }
        guard let officerKey else {
            throw FederationError(.failedPrecondition, "privacy officer '\(actor)' enrolled no signing key (re-enrol with `conclave user enroll`)")
        }
        guard Ed25519.verify(signature: signature, message: bytes, publicKey: officerKey) else {
            throw FederationError(.invalidArgument, "the signature on entry \(entry.seq) does not verify with privacy officer '\(actor)''s enrolled key")
        }
        guard entry.seq == ledger.entries.count, entry.previous == (ledger.entries.last?.entry.hashHex ?? "") else {
            throw FederationError(.aborted, "the ledger moved since entry \(entry.seq) was drafted; draft it again")
        }
        guard abs(entry.time - WallClock.now()) < 600 else {
            throw FederationError(.invalidArgument, "entry \(entry.seq) was drafted more than 10 minutes ago; draft it again")
        }
        // Only what the coordinator itself drafts is taken: the same entry drafted now (but for its time).
        var expected = try draftBudgetEntry(kind: entry.kind, budget: entry.budget, epsilon: entry.epsilonCap ?? .nan,
                                            delta: entry.deltaCap ?? .nan, reason: entry.reason ?? "", actor: actor)
        expected.time = entry.time
        guard expected == entry else {
            throw FederationError(.invalidArgument, "entry \(entry.seq) is not the entry the coordinator drafts for that request; send the drafted bytes unchanged")
        }
        var signed = SignedEntry(entry: entry, signatures: ledgerSigner(bytes))
        signed.signatures["privacy-officer/\(actor)"] = signature
        var next = ledger
        do { try next.append(signed) } catch {
            throw FederationError(.invalidArgument, "entry \(entry.seq): \(error.message)")
        }
        do { try store.appendLedger([signed]) } catch {
            throw FederationError(.unavailable, "cannot store entry \(entry.seq): \(error.message)")
        }
        ledger = next
        machine?.readmit(entry.budget.silo)  // a new or raised cap: the silo is priced again at its next poll
        logger.notice("privacy budget \(entry.kind.rawValue)", metadata: ["budget": "\(entry.budget)", "epsilon": "\(entry.epsilonCap ?? 0)",
                                                                         "delta": "\(entry.deltaCap ?? 0)", "officer": "\(actor)", "seq": "\(entry.seq)"])
        return entry.seq
    }

    /// The whole ledger, self-contained for offline audit: entries with every signature, checkpoints with
    /// co-signatures, and the public keys (coordinator's ledger key, silos' identity keys, officers' keys).
    public func ledgerExport() throws(FederationError) -> LedgerExport {
        let key = try ledgerSigningKey()
        do {
            var keys = ["coordinator": key.publicKey]
            for (silo, key) in try store.siloIdentityKeys() { keys["silo/\(silo)"] = key }
            for officer in try store.identities(role: "privacy-officer") {
                if let key = officer.signingKey { keys["privacy-officer/\(officer.name)"] = key }
            }
            return LedgerExport(origin: config.ledgerOrigin, entries: try store.ledgerEntries(),
                                checkpoints: try store.ledgerCheckpoints(), keys: keys, rounds: try store.committedRounds())
        } catch {
            throw FederationError(.unavailable, "cannot read the privacy ledger: \(error.message)")
        }
    }

    /// A privacy officer's enrolled signing key.
    public func officerSigningKey(_ name: String) throws(FederationError) -> [UInt8]? {
        do { return try store.identities(role: "privacy-officer").first { $0.name == name && $0.state == "active" }?.signingKey } catch {
            throw FederationError(.unavailable, "cannot read identities: \(error.message)")
        }
    }
}

/// The silos' side: each silo is a witness of the ledger (RFC 9162 checkpoints, C2SP-style co-signatures).
extension RunDriver {
    public struct WitnessView: Sendable {
        public let checkpoint: LedgerCheckpoint
        public let consistency: [[UInt8]]
        /// The silo's own entries from `cosignedSize` on, each with its inclusion proof in `checkpoint`.
        public let entries: [(entry: SignedEntry, proof: [[UInt8]])]
        public let coordinatorKey: [UInt8]
    }

    /// The newest checkpoint (made and stored now if the ledger grew), its consistency proof from the size the
    /// silo last co-signed, and the silo's entries since.
    public func witnessSync(silo: String, cosignedSize: Int) throws(FederationError) -> WitnessView {
        try openLedger()
        let size = ledger.entries.count
        guard cosignedSize >= 0, cosignedSize <= size else {
            throw FederationError(.failedPrecondition,
                "silo '\(silo)' co-signed a ledger of \(cosignedSize) entries but the coordinator's holds \(size): the ledger was truncated or forked")
        }
        // The tree is caught up with the ledger once per new entry; proofs reuse its perfect subtrees.
        while merkle.count < size { merkle.append(leafHash: MerkleTree.leafHash(ledger.entries[merkle.count].entry.canonicalBytes)) }
        let checkpoint: LedgerCheckpoint
        do {
            if newestCheckpoint == nil { newestCheckpoint = try store.ledgerCheckpoints().last }
            if let last = newestCheckpoint, last.size == size {
                checkpoint = last
            } else {
                var made = LedgerCheckpoint(origin: config.ledgerOrigin, size: size, root: merkle.root(0, size))
                made.signatures = ledgerSigner(made.body)
                if size > 0 {
                    try store.appendLedgerCheckpoint(made)
                    newestCheckpoint = made
                }
                checkpoint = made
            }
        } catch {
            throw FederationError(.unavailable, "cannot store a ledger checkpoint: \(error.message)")
        }
        let own = ledger.entries[cosignedSize...].filter { $0.entry.budget.silo == silo }
        return WitnessView(checkpoint: checkpoint, consistency: merkle.consistencyProof(from: cosignedSize, size: size),
                           entries: own.map { ($0, merkle.inclusionProof(index: $0.entry.seq, size: size)) },
                           coordinatorKey: ledgerKey!.publicKey)
    }

    /// Stores a silo's co-signatures: on a checkpoint the coordinator signed, and on the silo's own entries.
    /// Each must verify with the silo's identity key; nothing is stored if one does not.
    public func witnessCosign(silo: String, size: Int, checkpointSignature: [UInt8], entrySignatures: [Int: [UInt8]]) throws(FederationError) {
        try openLedger()
        let stored: [UInt8]?
        do { stored = try store.identityKey(silo: silo) } catch { throw FederationError(.unavailable, error.message) }
        guard let key = stored else { throw FederationError(.failedPrecondition, "silo '\(silo)' has no identity key on record") }
        let found: LedgerCheckpoint?
        do { found = try store.ledgerCheckpoint(size: size) } catch { throw FederationError(.unavailable, error.message) }
        guard let checkpoint = found else {
            throw FederationError(.notFound, "no checkpoint of size \(size) to co-sign")
        }
        guard Ed25519.verify(signature: checkpointSignature, message: checkpoint.body, publicKey: key) else {
            throw FederationError(.invalidArgument, "silo '\(silo)''s co-signature on the checkpoint of size \(size) does not verify with its identity key")
        }
        for (seq, signature) in entrySignatures {
            guard ledger.entries.indices.contains(seq), ledger.entries[seq].entry.budget.silo == silo else {
                throw FederationError(.invalidArgument, "silo '\(silo)' co-signed entry \(seq), which is not one of its own")
            }
            guard Ed25519.verify(signature: signature, message: ledger.entries[seq].entry.canonicalBytes, publicKey: key) else {
                throw FederationError(.invalidArgument, "silo '\(silo)''s co-signature on entry \(seq) does not verify with its identity key")
            }
        }
        do {
            for (seq, signature) in entrySignatures.sorted(by: { $0.key < $1.key }) {
                try store.addLedgerCosignature(seq: seq, signer: "silo/\(silo)", signature: signature)
                ledger.cosign(seq: seq, signer: "silo/\(silo)", signature: signature)
            }
            try store.addCheckpointCosignature(size: size, signer: "silo/\(silo)", signature: checkpointSignature)
        } catch { throw FederationError(.unavailable, "cannot store co-signatures: \(error.message)") }
    }
}

extension RunDriver {
    /// `budget plan`: every silo the run may select, its planned release priced against its budget.
    public func planRun(specTOML: String, source: String) throws(FederationError) -> (spec: RunSpec, lines: [BudgetPlanLine]) {
        let spec: RunSpec
        do { spec = try RunSpecFile.parse(specTOML, source: source) } catch {
            throw FederationError(.invalidArgument, error.message)
        }
        guard let privacy = spec.privacy else { return (spec, []) }
        try openLedger()
        let known: [CoordinatorStore.KnownSilo]
        do { known = try store.knownSilos() } catch { throw FederationError(.unavailable, error.message) }
        var silos = known
        if let allowed = config.allowedSilos {
            silos = allowed.sorted().map { id in known.first { $0.id == id } ?? .init(id: id, dataset: "", examples: 0) }
        }
        var machine = RoundStateMachine(runID: "plan", spec: spec, globalWeights: Array(repeating: 0, count: spec.model.parameterCount))
        var lines = [BudgetPlanLine]()
        for silo in silos {
            let info = SiloInfo(id: silo.id, examples: silo.examples, features: spec.model.inputFeatures,
                                classes: spec.model.classCount, dataset: silo.dataset)
            if privacy.mode == .record && silo.examples == 0 {
                throw FederationError(.invalidArgument, "\(source): silo '\(silo.id)' has not told the coordinator how many records it holds, so its DP-SGD release cannot be priced yet (start its agent once)")
            }
            guard let release = machine.plannedRelease(for: info) else {
                throw FederationError(.invalidArgument, "\(source): the release of silo '\(silo.id)' cannot be priced (its privacy parameters do not calibrate)")
            }
            do { try release.mechanism.validate() } catch {
                throw FederationError(.invalidArgument, "\(source): the release of silo '\(silo.id)' cannot be priced: \(error.message)")
            }
            lines.append(BudgetPlanLine(release: release, filter: ledger.filters[release.budget], rounds: spec.rounds, delta: privacy.delta))
        }
        return (spec, lines)
    }
}
