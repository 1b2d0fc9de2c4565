/// What a silo will take part in, decided by its operator in `silo.toml` (`[policy]`), checked by the agent
/// before it trains. The defaults protect the silo: secure aggregation required, and never in a sum of fewer
/// than three silos.
public struct SiloPolicy: Sendable, Equatable {
    /// Refuse any task without secure aggregation (the coordinator would see this silo's update alone).
    public var requireSecureAggregation: Bool
    /// Fewest silos whose sum may include this silo's update: a secure task's threshold (no sum of fewer
    /// inputs can be unmasked) and its survivor list must both reach it.
    public var minSilosInAggregate: Int
    /// Privacy modes accepted: "none", "record", "central", "distributed".
    public var acceptedPrivacy: Set<String>

    public static let privacyModes = ["none", "record", "central", "distributed"]

    public init(requireSecureAggregation: Bool = true, minSilosInAggregate: Int = 3,
                acceptedPrivacy: Set<String> = Set(privacyModes)) {
        self.requireSecureAggregation = requireSecureAggregation
        self.minSilosInAggregate = minSilosInAggregate
        self.acceptedPrivacy = acceptedPrivacy
    }

    /// Why a task breaks the policy (the rule, named as in silo.toml), or nil when the silo may take part.
    /// `secure` is the task's Shamir threshold and member count, nil for a plaintext task.
    public func refusal(secure: (threshold: Int, members: Int)?, privacyMode: String) -> (DeclineReason, String)? {
        let mode = privacyMode.isEmpty ? "none" : privacyMode
        if !acceptedPrivacy.contains(mode) {
            return (.privacyMode, "policy.require_privacy accepts \(acceptedPrivacy.sorted().joined(separator: ", ")); the run's privacy mode is '\(mode)'")
        }
        guard let secure else {
            return requireSecureAggregation
                ? (.secureAggregationRequired, "policy.require_secure_aggregation is on; the task has no secure aggregation, so the coordinator would see this silo's update alone")
                : nil
        }
        let smallest = min(secure.threshold, secure.members)
        if smallest < minSilosInAggregate {
            return (.aggregateTooSmall, "policy.min_silos_in_aggregate is \(minSilosInAggregate); this round's sum could be unmasked with only \(smallest) silos")
        }
        return nil
    }
}
