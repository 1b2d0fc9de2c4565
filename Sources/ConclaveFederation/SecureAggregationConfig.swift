public import ConclaveSecAgg

/// The `[secure_aggregation]` table of a run spec. On by default: the coordinator then only ever holds masked
/// vectors and the unmasked sum over the silos that survived the round.
public struct SecureAggregationConfig: Sendable, Equatable, Codable {
    /// L2 bound each silo clips its update to before quantizing; it also fixes the fixed-point scale.
    public var clipNorm: Double
    /// Fraction of a round's selected silos that may drop out and the round still complete; with the
    /// corruption rate it fixes the neighbour graph and the Shamir threshold (`GraphParameters.choose`).
    public var dropoutRate: Double
    /// Fraction of silos assumed to collude with the coordinator.
    public var corruptionRate: Double
    public var adversary: GraphParameters.Adversary
    public var prg: MaskGenerator.Kind
    /// Fewest bits of resolution per value; beyond what one 32-bit word holds for the round's n, values
    /// take two words (`FixedPointEncoding`).
    public var precisionBits: Int
    /// Seconds each phase after training (sharing keys, masked input, consistency check, unmasking) waits for
    /// silos that are still connected before closing with whoever answered.
    public var phaseTimeoutSeconds: Double

    public init(clipNorm: Double = SecureAggregationDefaults.clipNorm,
                dropoutRate: Double = SecureAggregationDefaults.dropoutRate,
                corruptionRate: Double = SecureAggregationDefaults.corruptionRate,
                adversary: GraphParameters.Adversary = SecureAggregationDefaults.adversary,
                prg: MaskGenerator.Kind = SecureAggregationDefaults.prg,
                phaseTimeoutSeconds: Double = SecureAggregationDefaults.phaseTimeoutSeconds,
                precisionBits: Int = SecureAggregationDefaults.precisionBits) throws(FederationError) {
        guard clipNorm > 0, clipNorm.isFinite else {
            throw FederationError(.invalidArgument, "secure_aggregation.clip_norm must be positive, got \(clipNorm)")
        }
        guard (0..<1).contains(dropoutRate), (0..<1).contains(corruptionRate) else {
            throw FederationError(.invalidArgument,
                "secure_aggregation.dropout_rate and corruption_rate must be in [0, 1), got \(dropoutRate) and \(corruptionRate)")
        }
        guard phaseTimeoutSeconds > 0, phaseTimeoutSeconds.isFinite else {
            throw FederationError(.invalidArgument,
                "secure_aggregation.phase_timeout_seconds must be positive, got \(phaseTimeoutSeconds)")
        }
        self.clipNorm = clipNorm
        self.dropoutRate = dropoutRate
        self.corruptionRate = corruptionRate
        self.adversary = adversary
        self.prg = prg
        guard (8...48).contains(precisionBits) else {
            throw FederationError(.invalidArgument, "secure_aggregation.precision_bits must be 8…48, got \(precisionBits)")
        }
        self.phaseTimeoutSeconds = phaseTimeoutSeconds
        self.precisionBits = precisionBits
    }

    /// The graph and threshold for `n` selected silos. When the configured dropout rate leaves no valid
    /// threshold (small rounds), the round tolerates fewer dropouts rather than weakening the threshold.
    public func graph(for n: Int) throws(FederationError) -> GraphParameters.Choice {
        guard n >= 2 else {
            throw FederationError(.failedPrecondition, "secure aggregation needs at least 2 silos in a round, got \(n)")
        }
        var rate = dropoutRate
        while true {
            do {
                return try GraphParameters.choose(silos: n, dropoutRate: rate, corruptionRate: corruptionRate,
                                                  adversary: adversary)
            } catch {
                guard rate > 0 else { throw FederationError(.failedPrecondition, "secure aggregation: \(error.message)") }
                rate = rate >= 0.01 ? rate / 2 : 0
            }
        }
    }
}

/// What a run spec's `[secure_aggregation]` table defaults to.
public enum SecureAggregationDefaults {
    public static let clipNorm = 10.0
    public static let dropoutRate = 0.2
    public static let corruptionRate = 0.0
    public static let adversary = GraphParameters.Adversary.active
    public static let prg = MaskGenerator.Kind.aes
    public static let phaseTimeoutSeconds = 30.0
    public static let precisionBits = 20
}
