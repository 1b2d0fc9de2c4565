public import ConclavePrivacy

/// `conclave budget plan`: would a run fit a budget? Its planned release per round charged, on a copy of the
/// budget's filter, round after round: nothing is recorded. A convenience before a run, not the guarantee
/// (the filter is checked again before every release).
public struct BudgetPlanLine: Codable, Sendable, Equatable {
    public var silo: String
    public var dataset: String
    public var unit: String
    public var registered: Bool
    public var epsilonCap: Double?
    public var deltaCap: Double?
    public var epsilonSpent: Double
    /// ε spent after the run's rounds (or after as many as fit, when not all do).
    public var epsilonAfter: Double
    public var fits: Bool
    /// The most rounds of this run the budget affords now (capped at `limit`).
    public var maxRounds: Int

    enum CodingKeys: String, CodingKey {
        case silo, dataset, unit, registered, fits
        case epsilonCap = "epsilon_cap", deltaCap = "delta_cap", epsilonSpent = "epsilon_spent", epsilonAfter = "epsilon_after"
        case maxRounds = "max_rounds"
    }

    /// Prices `rounds` releases against `filter` (nil: no budget registered; then ε is the RDP sum's at `delta`).
    public init(release: PrivacyRelease, filter: RenyiFilter?, rounds: Int, delta: Double, limit: Int = 100_000) {
        silo = release.silo
        dataset = release.dataset
        unit = release.unit
        registered = filter != nil
        epsilonCap = filter?.epsilonCap
        deltaCap = filter?.deltaCap
        guard var f = filter else {
            let rdp = RDP.defaultOrders.map { Double(rounds) * release.mechanism.rdp(order: $0) }
            epsilonSpent = 0
            epsilonAfter = RDP.epsilon(rdp: rdp, orders: RDP.defaultOrders, delta: delta).epsilon
            fits = false
            maxRounds = 0
            return
        }
        epsilonSpent = f.epsilonSpent
        let increment = f.increment(release.mechanism.rdp)
        var count = 0
        var after = f.epsilonSpent
        // Every round costs the same: the count is arithmetic, checked by charging (the filter's own rule).
        if increment.atOrder > 0 {
            let estimate = ((f.bound - f.spent) / increment.atOrder).rounded(.down)
            count = estimate.isFinite && estimate < Double(limit) ? max(0, Int(estimate) + 1) : limit
            var probe = f
            var admitted = 0
            while admitted < count, case .charged = probe.charge(increment) { admitted += 1 }
            count = admitted
        } else {
            count = limit
        }
        for _ in 0..<min(count, rounds) { _ = f.charge(increment) }
        after = f.epsilonSpent
        epsilonAfter = after
        fits = count >= rounds
        maxRounds = count
    }
}
