public import ConclavePrivacy

/// The `[privacy]` table of a run spec: which differential-privacy mechanism protects the run, and its
/// parameters. The unit of privacy is one silo's whole contribution in `central` mode, and one record of a
/// silo's data in `record` mode.
public struct PrivacyConfig: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// DP-FedAvg: the coordinator adds N(0, (σC)²) to the securely aggregated sum of clipped updates.
        case central
        case distributed
        /// DP-SGD inside every silo: Poisson sampling, per-example clipping to `clipNorm`, Gaussian noise.
        case record
    }

    public var mode: Mode
    /// Noise standard deviation over the clipping bound (for `central`, C is `secure_aggregation.clip_norm`;
    /// for `record`, `clipNorm`). Nil when `epsilon` sets it: `central` calibrates it for the run's rounds when
    /// the spec is read, and in `record` mode every silo calibrates its own for its sampling rate.
    public var noiseMultiplier: Double?
    /// The run's budget at `delta`; in `record` mode, each silo's own.
    public var epsilon: Double?
    public var delta: Double
    public var accountant: AccountantKind
    /// `record` mode: the L2 bound on each example's gradient.
    public var clipNorm: Double
    /// `central` mode: move the clip norm towards a quantile of the silos' update norms each round.
    public var adaptiveClipping: AdaptiveClipping?

    public init(mode: Mode, noiseMultiplier: Double? = nil, epsilon: Double? = nil, delta: Double = 1e-5,
                accountant: AccountantKind = .pld, clipNorm: Double = 1,
                adaptiveClipping: AdaptiveClipping? = nil) throws(FederationError) {
        switch (noiseMultiplier, epsilon) {
        case (nil, nil):
            throw FederationError(.invalidArgument, "privacy needs noise_multiplier or epsilon (a budget to calibrate the noise for)")
        case (.some, .some):
            throw FederationError(.invalidArgument, "privacy takes noise_multiplier or epsilon, not both")
        default: break
        }
        if let sigma = noiseMultiplier, !(sigma > 0 && sigma.isFinite) {
            throw FederationError(.invalidArgument, "privacy.noise_multiplier must be positive, got \(sigma)")
        }
        if let eps = epsilon, !(eps > 0 && eps.isFinite) {
            throw FederationError(.invalidArgument, "privacy.epsilon must be positive, got \(eps)")
        }
        guard delta > 0, delta < 1 else { throw FederationError(.invalidArgument, "privacy.delta must be in (0, 1), got \(delta)") }
        guard clipNorm > 0, clipNorm.isFinite else {
            throw FederationError(.invalidArgument, "privacy.clip_norm must be positive, got \(clipNorm)")
        }
        self.mode = mode
        self.noiseMultiplier = noiseMultiplier
        self.epsilon = epsilon
        self.delta = delta
        self.accountant = accountant
        self.clipNorm = clipNorm
        if adaptiveClipping != nil, mode != .central {
            throw FederationError(.invalidArgument, "privacy.adaptive_clipping works in central mode only")
        }
        self.adaptiveClipping = adaptiveClipping
    }

    /// `central` with an ε budget: the smallest σ whose ε after `rounds` rounds is at most the budget — raised
    /// by the lattice rounding's share (see `effectiveNoiseMultiplier`), so the multiplier achieved meets it.
    mutating func calibrateCentral(rounds: Int, clipNorm: Double, dimension: Int) throws(FederationError) {
        guard mode == .central, noiseMultiplier == nil, let target = epsilon else { return }
        let needed: Double
        do {
            needed = try Accountant.calibrate(epsilon: target, samplingRate: 1, steps: rounds, delta: delta,
                                              accountant: accountant)
        } catch {
            throw FederationError(.invalidArgument, "privacy.epsilon = \(target): \(error.message)")
        }
        // A hair above what is needed: adaptive clipping's count rounds to its own lattice too.
        var sigma = needed * (1 + 1e-5)
        for _ in 0..<4 {
            noiseMultiplier = sigma
            let achieved = effectiveNoiseMultiplier(clipNorm: clipNorm, dimension: dimension)
            if achieved >= needed * (1 + 1e-6) { return }
            sigma *= needed * (1 + 1e-6) / achieved * (1 + 1e-12)
        }
        noiseMultiplier = sigma
    }

    /// ε spent after `rounds` central releases. Every live silo takes part in every round, so there is no
    /// sampling amplification (q = 1): fixed-size selection without replacement is not Poisson sampling, and
    /// claiming its amplification would overstate the guarantee.
    public func epsilon(afterRounds rounds: Int, noiseMultiplier sigma: Double) -> Double {
        (try? Accountant.epsilon(noiseMultiplier: sigma, samplingRate: 1, steps: rounds, delta: delta,
                                 accountant: accountant)) ?? .infinity
    }

    /// The multiplier actually achieved by `GaussianNoise` at std σC on `dimension` values with sensitivity C
    /// (a hair below σ: rounding to its lattice adds step·√d to the sensitivity).
    public func effectiveNoiseMultiplier(clipNorm: Double, dimension: Int) -> Double {
        guard let sigma = noiseMultiplier else { return 0 }
        return CentralMechanism(z: sigma, clipNorm: clipNorm, dimension: dimension, countStddev: nil).multiplier
    }
}

extension RunSpec {
    /// The run's privacy in one line, for operators: what protects it, at what cost, and (distributed) the
    /// dropout rate its noise is sized for.
    public var privacySummary: String {
        guard let p = privacy else { return "" }
        let budget = p.epsilon.map { "ε ≤ \($0)" } ?? "noise multiplier \(p.noiseMultiplier ?? 0)"
        switch p.mode {
        case .record:
            return "record (DP-SGD in every silo): \(budget) per silo at δ = \(p.delta), per-example clip \(p.clipNorm)"
        case .central:
            let adaptive = p.adaptiveClipping.map { " with adaptive clipping toward the \($0.targetQuantile) quantile" } ?? ""
            return "central: \(budget) at δ = \(p.delta), σ = \(p.noiseMultiplier ?? 0)\(adaptive)"
        case .distributed:
            let dropout = secureAggregation?.dropoutRate ?? 0
            return "distributed: \(budget) at δ = \(p.delta), σ = \(p.noiseMultiplier ?? 0); noise shares sized for a dropout rate of \(dropout) (ε is charged for the shares that survive)"
        }
    }
}

/// Distributed mode: how each round's noise is shared out, and what the shares that survived are worth.
extension PrivacyConfig {
    /// The shares a round's noise is sized for: the members expected to survive at the run's dropout rate.
    public static func plannedShares(members: Int, dropoutRate: Double) -> Int {
        max(1, Int((Double(members) * (1 - dropoutRate)).rounded(.up)))
    }

    /// One round's mechanism: every member adds N_ℤ(0, (σC)²/s) on the grid, s the planned shares, so that the
    /// sum of s shares carries the noise σC of central mode.
    public func distributedMechanism(members: Int, clipNorm: Double, dimension: Int, dropoutRate: Double,
                                     rotationSeed: [UInt8]) -> DistributedDiscreteGaussian {
        let shares = Self.plannedShares(members: members, dropoutRate: dropoutRate)
        return DistributedDiscreteGaussian(clipNorm: clipNorm, localStddev: (noiseMultiplier ?? 1) * clipNorm / Double(shares).squareRoot(),
                                           silos: members, dimension: dimension, rotationSeed: rotationSeed)
    }

    /// ε after rounds that selected `members` silos each and unmasked `shares` of them: the noise actually in
    /// each sum is charged, so rounds that lost silos cost more.
    public func distributedEpsilon(history: [(members: Int, shares: Int)], clipNorm: Double, dimension: Int,
                                   dropoutRate: Double) -> Double {
        DistributedDiscreteGaussian.epsilon(rounds: history.map { round in
            (distributedMechanism(members: round.members, clipNorm: clipNorm, dimension: dimension, dropoutRate: dropoutRate,
                                  rotationSeed: []), round.shares)
        }, delta: delta)
    }

    /// `distributed` with an ε budget: σ from the RDP accountant (KLS's bound is RDP; with the fine grid it is the
    /// continuous Gaussian's to ~10⁻⁹), with a 10⁻⁴ margin for the rounding's share of the sensitivity.
    mutating func calibrateDistributed(rounds: Int) throws(FederationError) {
        guard mode == .distributed, noiseMultiplier == nil, let target = epsilon else { return }
        do {
            noiseMultiplier = try Accountant.calibrate(epsilon: target, samplingRate: 1, steps: rounds, delta: delta,
                                                       accountant: .rdp) * (1 + 1e-4)
        } catch {
            throw FederationError(.invalidArgument, "privacy.epsilon = \(target): \(error.message)")
        }
    }
}
