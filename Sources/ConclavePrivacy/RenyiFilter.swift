#if canImport(Glibc)
import Glibc
#endif

/// The cross-run budget of one (silo, dataset, unit): a Rényi-DP privacy filter at one order α* pinned when the
/// budget is registered (Feldman & Zrnic, NeurIPS 2021). Runs are chosen adaptively — the next run's noise and
/// rounds are picked after seeing the last model — so the guarantee comes from the filter, not from composing
/// ε: a release is admitted only if the running RDP sum at α* plus its increment stays within
/// b(α*) = ε_cap − log(1 − 1/α*) + log(δ_cap·α*)/(α* − 1), the RDP level whose conversion (Canonne, Kamath &
/// Steinke 2020; the one `RDP.epsilon` uses) is exactly (ε_cap, δ_cap). Whatever the sequence, every admitted
/// history then satisfies (α*, b(α*))-RDP and hence (ε_cap, δ_cap)-DP. Pinning one order needs no split of
/// δ over orders; the price is a slightly looser fit than the best order per history (the ε-vs-α curve is
/// flat near its minimum). Increments are rounded up before they are stored, so a recomputation can only find
/// them equal or larger than the true cost. Pure value type: the ledger persists it.
public struct RenyiFilter: Sendable, Equatable, Codable {
    public let epsilonCap: Double
    public let deltaCap: Double
    /// The pinned order α*.
    public let order: Double
    /// The RDP spent at α* so far (a sum of rounded-up increments).
    public internal(set) var spent: Double = 0
    /// The RDP spent at each of `displayOrders`: only for the accounting value shown beside the guarantee.
    public internal(set) var spentByOrder: [Double] = Array(repeating: 0, count: RenyiFilter.displayOrders.count)

    /// The orders the accounting value (ε "spent") is minimised over; the filter itself enforces only α*.
    public static let displayOrders: [Double] = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 128, 256]

    /// One release's cost: its RDP at α* and at every display order, each rounded up (never below the truth).
    public struct Increment: Sendable, Equatable, Codable {
        public let atOrder: Double
        public let byOrder: [Double]
    }

    /// The increment of a release whose RDP curve is `rdp` (order → RDP of the whole release).
    public func increment(_ rdp: (Double) -> Double) -> Increment {
        Increment(atOrder: Self.roundedUp(rdp(order)), byOrder: Self.displayOrders.map { Self.roundedUp(rdp($0)) })
    }

    public init(epsilonCap: Double, deltaCap: Double, order: Double? = nil) throws(PrivacyError) {
        guard epsilonCap > 0, epsilonCap.isFinite else { throw PrivacyError("a budget's ε cap must be positive and finite, got \(epsilonCap)") }
        guard deltaCap > 0, deltaCap < 1 else { throw PrivacyError("a budget's δ cap must be in (0, 1), got \(deltaCap)") }
        let alpha = order ?? Self.defaultOrder(epsilon: epsilonCap, delta: deltaCap)
        guard alpha > 1, alpha <= 1024, alpha.isFinite else { throw PrivacyError("the filter's order must be in (1, 1024], got \(alpha)") }
        self.epsilonCap = epsilonCap
        self.deltaCap = deltaCap
        self.order = alpha
        guard bound > 0 else {
            throw PrivacyError("(ε = \(epsilonCap), δ = \(deltaCap)) leaves no RDP budget at order \(alpha); choose a larger ε or δ, or another order")
        }
    }

    /// The order a Gaussian-like history that uses the whole budget would want: α ≈ 1 + 2·log(1/δ)/ε, on the
    /// grid of `RDP.defaultOrders` (rounded to the nearest listed order).
    public static func defaultOrder(epsilon: Double, delta: Double) -> Double {
        let ideal = 1 + 2 * log(1 / delta) / epsilon
        return RDP.defaultOrders.min { abs($0 - ideal) < abs($1 - ideal) } ?? 8
    }

    /// b(α*): the RDP the filter admits in total.
    public var bound: Double {
        epsilonCap - log1p(-1 / order) + log(deltaCap * order) / (order - 1)
    }

    public var remaining: Double { max(0, bound - spent) }

    /// An increment rounded up to 10⁻⁹ (never below the true value), as the ledger stores it.
    public static func roundedUp(_ rdp: Double) -> Double {
        guard rdp.isFinite else { return .infinity }
        var stored = (rdp * 1e9).rounded(.up) / 1e9
        while stored < rdp { stored = stored.nextUp }
        return stored
    }

    /// Whether a release costing `increment` (RDP at α*, already rounded up) fits.
    public func admits(_ increment: Double) -> Bool {
        increment >= 0 && increment.isFinite && spent + increment <= bound
    }

    public enum Decision: Sendable, Equatable {
        case charged(spentAfter: Double)
        case refused(reason: String)
    }

    /// Charges a release if it fits; otherwise changes nothing and says why.
    public mutating func charge(_ increment: Increment) -> Decision {
        let cost = increment.atOrder
        guard cost >= 0, cost.isFinite, increment.byOrder.count == spentByOrder.count else {
            return .refused(reason: "the release's cost at order \(order) is not a finite non-negative number (\(cost))")
        }
        guard admits(cost) else {
            return .refused(reason: "the release costs \(cost) (RDP at order \(order)) but \(remaining) of \(bound) remains")
        }
        spent += cost
        for i in spentByOrder.indices { spentByOrder[i] += increment.byOrder[i] }
        return .charged(spentAfter: spent)
    }

    /// Records a release that was already made (replaying a ledger), whether or not it still fits: a lowered
    /// cap must not make past spending vanish.
    mutating func record(_ increment: Increment) {
        spent += increment.atOrder
        for i in spentByOrder.indices where i < increment.byOrder.count { spentByOrder[i] += increment.byOrder[i] }
    }

    /// The accounting value: ε at δ_cap of what was spent, the best over α* and the display orders (shown
    /// beside the guarantee, which is the cap; it is a DP statement only for a history fixed in advance).
    public var epsilonSpent: Double {
        guard spent > 0 else { return 0 }
        return RDP.epsilon(rdp: [spent] + spentByOrder, orders: [order] + Self.displayOrders, delta: deltaCap).epsilon
    }
}
