import Foundation

/// A silo's own record of one release of its data, made and signed (with its identity key) before the data
/// leaves: the silo's ledger is these, and its filter is replayed from them. The silo computes the mechanism
/// from the parameters it was told (never from a cost the coordinator states); where the outcome is unknown
/// when it sends (how many noise shares a distributed sum will hold), it charges the worst case.
public struct SiloCharge: Codable, Sendable, Equatable {
    public var run: String
    public var round: Int
    /// Distinguishes a retried round's second release (after the first had left) from a resend of the first.
    public var release: Int
    public var budget: BudgetKey
    public var mechanism: Mechanism
    /// The δ the run is accounted at (used when no registered budget gives one).
    public var delta: Double
    public var time: Double

    public init(run: String, round: Int, release: Int, budget: BudgetKey, mechanism: Mechanism, delta: Double, time: Double) {
        self.run = run
        self.round = round
        self.release = release
        self.budget = budget
        self.mechanism = mechanism
        self.delta = delta
        self.time = time
    }

    /// What the silo signs: a domain-separated canonical encoding.
    public var signedBytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array("conclave-silo-charge-v1\n".utf8) + Array((try? encoder.encode(self)) ?? Data())
    }
}

/// A silo's filters, replayed from the budget entries it adopted from the ledger (registrations and
/// amendments it checked were included in a signed checkpoint) and its own charges; plus, optionally, its own
/// cap (`[privacy] max_epsilon` in silo.toml) that no coordinator can raise.
public struct SiloFilters: Sendable {
    public private(set) var registered: [BudgetKey: RenyiFilter] = [:]
    public private(set) var local: [BudgetKey: RenyiFilter] = [:]
    public private(set) var spentWithoutBudget: [BudgetKey: (rdp: [Double], delta: Double)] = [:]
    let maxEpsilon: Double?

    public init(adopted: [LedgerEntry], charges: [SiloCharge], maxEpsilon: Double?) throws(PrivacyError) {
        self.maxEpsilon = maxEpsilon
        var ledger = PrivacyLedger()
        for entry in adopted where entry.kind == .registration || entry.kind == .amendment {
            try ledger.apply(entry)
        }
        registered = ledger.filters
        for charge in charges { apply(charge) }
    }

    /// Why this charge may not be made, or nil when every filter of its budget admits it.
    public func refusal(_ charge: SiloCharge) -> String? {
        let k = charge.budget
        if let f = registered[k] {
            let cost = f.increment(charge.mechanism.rdp).atOrder
            if !f.admits(cost) {
                return "the registered budget \(k) (ε ≤ \(f.epsilonCap), δ = \(f.deltaCap)) cannot afford it: it costs \(cost) of the \(f.remaining) RDP left at order \(f.order)"
            }
        }
        if let cap = maxEpsilon {
            let f = local[k] ?? (try? RenyiFilter(epsilonCap: cap, deltaCap: registered[k]?.deltaCap ?? charge.delta))
            guard let f else { return "this silo's max_epsilon = \(cap) leaves no budget at δ = \(charge.delta)" }
            let cost = f.increment(charge.mechanism.rdp).atOrder
            if !f.admits(cost) {
                return "this silo's own cap (privacy.max_epsilon = \(cap)) on \(k) cannot afford it: it costs \(cost) of the \(f.remaining) RDP left at order \(f.order)"
            }
        }
        return nil
    }

    public mutating func apply(_ charge: SiloCharge) {
        let k = charge.budget
        if var f = registered[k] {
            f.record(f.increment(charge.mechanism.rdp))
            registered[k] = f
        } else {
            var spent = spentWithoutBudget[k] ?? (Array(repeating: 0, count: RDP.defaultOrders.count), charge.delta)
            for (i, order) in RDP.defaultOrders.enumerated() { spent.rdp[i] += charge.mechanism.rdp(order: order) }
            spentWithoutBudget[k] = spent
        }
        if let cap = maxEpsilon, var f = local[k] ?? (try? RenyiFilter(epsilonCap: cap, deltaCap: registered[k]?.deltaCap ?? charge.delta)) {
            f.record(f.increment(charge.mechanism.rdp))
            local[k] = f
        }
    }

    /// ε spent on a budget at its δ: the registered filter's accounting value, else the RDP sum's.
    public func epsilonSpent(_ k: BudgetKey) -> Double {
        if let f = registered[k] { return f.epsilonSpent }
        if let f = local[k] { return f.epsilonSpent }
        guard let s = spentWithoutBudget[k] else { return 0 }
        return RDP.epsilon(rdp: s.rdp, orders: RDP.defaultOrders, delta: s.delta).epsilon
    }
}
