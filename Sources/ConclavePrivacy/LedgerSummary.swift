/// What a privacy officer reads off the ledger (`budget show`, `budget history`, the report), computed by
/// replaying the entries through the same filters the coordinator enforces.
public struct BudgetSummary: Sendable, Equatable {
    public let budget: BudgetKey
    public let epsilonCap: Double
    public let deltaCap: Double
    /// The filter's pinned order α* and its RDP bound b(α*), spent and remaining.
    public let order: Double
    public let bound: Double
    public let rdpSpent: Double
    /// The accounting value: ε at δ_cap of the RDP spent (the guarantee is the cap).
    public let epsilonSpent: Double
    public let releases: Int
    public let refusals: Int
    public let runs: [String]
    public let epoch: Int
    /// "active", "amended" (a cap changed since registration) or "exhausted" (its last request was refused).
    public let status: String

    public var epsilonRemaining: Double { max(0, epsilonCap - epsilonSpent) }
}

/// One line of a budget's history.
public struct HistoryLine: Sendable, Equatable {
    public let entry: LedgerEntry
    /// ε of this release alone at the budget's δ (RDP conversion of its increment; 0 for non-charges).
    public let epsilon: Double
}

public enum LedgerSummary {
    /// Every registered budget, in registration order.
    public static func budgets(_ entries: [LedgerEntry]) throws(PrivacyError) -> [BudgetSummary] {
        var ledger = PrivacyLedger()
        var order = [BudgetKey](), releases = [BudgetKey: Int](), refusals = [BudgetKey: Int](), runs = [BudgetKey: [String]]()
        var epochs = [BudgetKey: Int](), lastRefused = [BudgetKey: Bool]()
        for e in entries {
            try ledger.apply(e)
            let k = e.budget
            switch e.kind {
            case .registration: order.append(k)
            case .amendment:
                epochs[k] = e.epoch
                lastRefused[k] = false
            case .charge:
                releases[k, default: 0] += 1
                lastRefused[k] = false
                if let run = e.run, !(runs[k] ?? []).contains(run) { runs[k, default: []].append(run) }
            case .refusal:
                refusals[k, default: 0] += 1
                lastRefused[k] = true
            }
        }
        return order.compactMap { k in
            guard let f = ledger.filters[k] else { return nil }
            let status = lastRefused[k] == true ? "exhausted" : (epochs[k] ?? 0) > 0 ? "amended" : "active"
            return BudgetSummary(budget: k, epsilonCap: f.epsilonCap, deltaCap: f.deltaCap, order: f.order, bound: f.bound,
                                 rdpSpent: f.spent, epsilonSpent: f.epsilonSpent, releases: releases[k] ?? 0,
                                 refusals: refusals[k] ?? 0, runs: runs[k] ?? [], epoch: epochs[k] ?? 0, status: status)
        }
    }

    /// The entries of one budget (or of a silo's and dataset's budgets of every unit), each charge with its own ε.
    public static func history(_ entries: [LedgerEntry], silo: String, dataset: String, unit: String?) -> [HistoryLine] {
        var deltas = [BudgetKey: Double]()
        return entries.compactMap { e in
            if e.kind == .registration, let d = e.deltaCap { deltas[e.budget] = d }
            guard e.budget.silo == silo, e.budget.dataset == dataset, unit == nil || e.budget.unit == unit else { return nil }
            var epsilon = 0.0
            if e.kind == .charge, let inc = e.increment, let delta = deltas[e.budget], let order = e.order ?? orderOf(e.budget, entries) {
                epsilon = RDP.epsilon(rdp: [inc.atOrder] + inc.byOrder, orders: [order] + RenyiFilter.displayOrders, delta: delta).epsilon
            }
            return HistoryLine(entry: e, epsilon: epsilon)
        }
    }

    /// ε of each charge alone at its budget's δ, by sequence number.
    public static func historyAll(_ entries: [LedgerEntry]) -> [Int: Double] {
        var keys = [BudgetKey]()
        for e in entries where e.kind == .registration && !keys.contains(e.budget) { keys.append(e.budget) }
        var out = [Int: Double]()
        for k in keys {
            for line in history(entries, silo: k.silo, dataset: k.dataset, unit: k.unit) where line.entry.kind == .charge {
                out[line.entry.seq] = line.epsilon
            }
        }
        return out
    }

    private static func orderOf(_ budget: BudgetKey, _ entries: [LedgerEntry]) -> Double? {
        entries.first { $0.kind == .registration && $0.budget == budget }?.order
    }
}
