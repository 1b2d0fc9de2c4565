/// Why a silo's agent would not take part in a round it was selected for. The silo decides by its own policy
/// (`[policy]` in silo.toml) or its own records; the coordinator only learns the reason and leaves it out.
public enum DeclineReason: String, Sendable, CaseIterable {
    /// The task had no secure aggregation and the silo requires it.
    case secureAggregationRequired = "secure-aggregation-required"
    /// The sum could hold fewer silos than the silo's `min_silos_in_aggregate`.
    case aggregateTooSmall = "aggregate-too-small"
    /// The run's privacy mode is not one the silo accepts.
    case privacyMode = "privacy-mode"
    /// The silo already sent a masked input for this round (a retried attempt): it is never masked into a
    /// second sum.
    case alreadyMasked = "already-masked"
    /// The silo's own privacy budget cannot afford the round.
    case privacyBudget = "privacy-budget"
}
