import ConclaveCrypto
public import Foundation

/// The privacy ledger as a pure state machine: the entries (hash-chained, in a Merkle tree) and each budget's
/// filter, rebuilt from the entries. Appending a charge checks the filter first and records a refusal instead
/// when the release does not fit. Signing is injected (the coordinator's key; silos and officers co-sign the
/// same canonical bytes). Storage and the network sit outside.
public struct PrivacyLedger: Sendable {
    public internal(set) var entries: [SignedEntry] = []
    /// The current epoch's filter of each registered budget.
    public private(set) var filters: [BudgetKey: RenyiFilter] = [:]
    private var epochs: [BudgetKey: Int] = [:]

    public typealias Signer = @Sendable ([UInt8]) -> [String: [UInt8]]

    public init() {}

    /// Rebuilds the state from stored entries (their signatures and chain are `LedgerVerifier`'s business).
    public init(replaying stored: [SignedEntry]) throws(PrivacyError) {
        for signed in stored { try apply(signed.entry) }
        entries = stored
    }

    var lastHash: String { entries.last?.entry.hashHex ?? "" }

    func draft(_ kind: LedgerEntry.Kind, _ budget: BudgetKey, time: Double) -> LedgerEntry {
        LedgerEntry(seq: entries.count, time: time, kind: kind, budget: budget, epoch: epochs[budget] ?? 0, previous: lastHash)
    }

    /// Fixes a budget's cap before any charge. Registering a budget twice is refused.
    public mutating func register(_ budget: BudgetKey, epsilon: Double, delta: Double, order: Double? = nil, actor: String,
                                  time: Double, sign: Signer) throws(PrivacyError) -> SignedEntry {
        let filter = try RenyiFilter(epsilonCap: epsilon, deltaCap: delta, order: order)
        var entry = draft(.registration, budget, time: time)
        entry.epsilonCap = epsilon
        entry.deltaCap = delta
        entry.order = filter.order
        entry.actor = actor
        try apply(entry)
        let signed = SignedEntry(entry: entry, signatures: sign(entry.canonicalBytes))
        entries.append(signed)
        return signed
    }

    /// Raises (or lowers) a cap: a new epoch whose filter starts from what was spent, so nothing spent is
    /// forgotten; the report shows the guarantee weakened from here, and by whom.
    public mutating func amend(_ budget: BudgetKey, epsilon: Double, reason: String, actor: String, time: Double,
                               sign: Signer) throws(PrivacyError) -> SignedEntry {
        var entry = draft(.amendment, budget, time: time)
        entry.epoch = (epochs[budget] ?? 0) + 1
        entry.epsilonCap = epsilon
        entry.deltaCap = filters[budget]?.deltaCap
        entry.order = filters[budget]?.order
        entry.reason = reason
        entry.actor = actor
        try apply(entry)
        let signed = SignedEntry(entry: entry, signatures: sign(entry.canonicalBytes))
        entries.append(signed)
        return signed
    }

    /// Charges a release to its budget if the filter admits it; otherwise records the refusal. Either way the
    /// entry is appended and returned; `charged` says which.
    public mutating func charge(_ budget: BudgetKey, mechanism: Mechanism, run: String, round: Int, modelSHA256: String?,
                                time: Double, sign: Signer) throws(PrivacyError) -> (entry: SignedEntry, charged: Bool) {
        try mechanism.validate()
        guard let filter = filters[budget] else { throw PrivacyError("no budget is registered for \(budget)") }
        let increment = filter.increment(mechanism.rdp)
        var entry = draft(filter.admits(increment.atOrder) ? .charge : .refusal, budget, time: time)
        entry.run = run
        entry.round = round
        entry.mechanism = mechanism
        entry.increment = increment
        entry.modelSHA256 = modelSHA256
        var probe = filter
        if entry.kind == .refusal, case .refused(let reason) = probe.charge(increment) { entry.reason = reason }
        try apply(entry)
        if entry.kind == .charge { entry.epsilonCumulative = filters[budget]?.epsilonSpent }
        let signed = SignedEntry(entry: entry, signatures: sign(entry.canonicalBytes))
        entries.append(signed)
        return (signed, entry.kind == .charge)
    }

    /// Appends an entry made elsewhere (an officer's signed registration, refusals drafted on a copy) if it
    /// continues the ledger and fits its state; otherwise changes nothing.
    public mutating func append(_ signed: SignedEntry) throws(PrivacyError) {
        guard signed.entry.seq == entries.count, signed.entry.previous == lastHash else {
            throw PrivacyError("entry \(signed.entry.seq) does not continue the ledger of \(entries.count) entries")
        }
        try apply(signed.entry)
        entries.append(signed)
    }

    /// Adds a co-signature (a silo's on its charge) to an entry already in the ledger.
    public mutating func cosign(seq: Int, signer: String, signature: [UInt8]) {
        guard entries.indices.contains(seq) else { return }
        entries[seq].signatures[signer] = signature
    }

    /// The state change an entry makes; throws when it does not fit the state (the entry is then not added).
    mutating func apply(_ entry: LedgerEntry) throws(PrivacyError) {
        let budget = entry.budget
        switch entry.kind {
        case .registration:
            guard filters[budget] == nil else { throw PrivacyError("a budget is already registered for \(budget) (entry \(entry.seq))") }
            guard let e = entry.epsilonCap, let d = entry.deltaCap else { throw PrivacyError("registration \(entry.seq) has no cap") }
            filters[budget] = try RenyiFilter(epsilonCap: e, deltaCap: d, order: entry.order)
            epochs[budget] = 0
        case .amendment:
            guard let old = filters[budget] else { throw PrivacyError("amendment \(entry.seq): no budget is registered for \(budget)") }
            guard let e = entry.epsilonCap else { throw PrivacyError("amendment \(entry.seq) has no cap") }
            var next = try RenyiFilter(epsilonCap: e, deltaCap: old.deltaCap, order: old.order)
            next.carry(from: old)
            filters[budget] = next
            epochs[budget] = entry.epoch
        case .charge:
            guard var filter = filters[budget] else { throw PrivacyError("charge \(entry.seq): no budget is registered for \(budget)") }
            guard let increment = entry.increment, case .charged = filter.charge(increment) else {
                throw PrivacyError("charge \(entry.seq) does not fit the budget of \(budget)")
            }
            filters[budget] = filter
        case .refusal:
            break
        }
    }

    /// The Merkle leaves: one per entry, over its canonical bytes.
    public var leafHashes: [[UInt8]] { entries.map { MerkleTree.leafHash($0.entry.canonicalBytes) } }

    public func checkpoint(origin: String, sign: Signer) -> LedgerCheckpoint {
        var c = LedgerCheckpoint(origin: origin, size: entries.count, root: MerkleTree.root(leafHashes))
        c.signatures = sign(c.body)
        return c
    }
}

extension RenyiFilter {
    /// An amended filter keeps what the previous epoch spent.
    mutating func carry(from old: RenyiFilter) {
        spent = old.spent
        spentByOrder = old.spentByOrder
    }
}
