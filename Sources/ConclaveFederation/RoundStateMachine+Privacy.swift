import ConclaveLearning
import ConclavePrivacy

/// What each round's release costs under the run's privacy mode, and the checks on silos' own reports.
extension RoundStateMachine {
    /// The round's spend: central — the run's ε so far at the multiplier achieved; distributed — ε for the
    /// shares each round's sum actually held; record — the largest contributor's own cumulative ε.
    func privacySpent(_ open: OpenRound, contributions: [Contribution], secure: SecureSummary?) -> PrivacySpent? {
        spec.privacy.flatMap { p -> PrivacySpent? in
            switch p.mode {
            case .distributed:
                // The noise in the sum is what the survivors added: charge that, over every round so far.
                guard let secure, let config = spec.secureAggregation else { return nil }
                let this = (members: secure.unmasked + secure.dropped, shares: secure.unmasked)
                let epsilon = p.distributedEpsilon(history: noiseShares + [this], clipNorm: config.clipNorm,
                                                   dimension: spec.model.parameterCount, dropoutRate: config.dropoutRate)
                let planned = PrivacyConfig.plannedShares(members: this.members, dropoutRate: config.dropoutRate)
                return PrivacySpent(epsilon: epsilon, delta: p.delta,
                                    noiseMultiplier: (p.noiseMultiplier ?? 0) * (Double(this.shares) / Double(planned)).squareRoot())
            case .central:
                let sigma = centralMultiplier(p, members: open.selected.count)
                return PrivacySpent(epsilon: p.epsilon(afterRounds: open.number + discardedReleases, noiseMultiplier: sigma), delta: p.delta,
                                    noiseMultiplier: sigma)
            case .record:
                // Each silo's own guarantee; the round reports the largest among its contributors.
                guard let worst = contributions.compactMap(\.privacy).max(by: { $0.epsilon < $1.epsilon }) else { return nil }
                return PrivacySpent(epsilon: worst.epsilon, delta: worst.delta, noiseMultiplier: worst.noiseMultiplier)
            }
        }
    }

    func centralMultiplier(_ p: PrivacyConfig, members: Int) -> Double {
        centralMechanism(members: members)?.multiplier ?? 0
    }

    /// A record-mode run counts only updates whose silo says what they cost, with the multiplier and sampling
    /// rate of the plan the run's parameters give its records; other runs take no report.
    mutating func checkPrivacyReport(_ report: SiloPrivacy?, from silo: String) throws(FederationError) {
        let record = spec.privacy?.mode == .record
        if record, report == nil {
            throw FederationError(.invalidArgument,
                "run '\(runID)' protects records with DP-SGD: silo '\(silo)' sent its update without a privacy report (upgrade the agent)")
        }
        if let report {
            guard record else {
                throw FederationError(.invalidArgument, "silo '\(silo)' sent a record-privacy report, but run '\(runID)' is not in record mode")
            }
            guard report.epsilon >= 0, report.epsilon.isFinite, report.delta > 0, report.delta < 1, report.steps >= 0 else {
                throw FederationError(.invalidArgument,
                    "silo '\(silo)' sent an invalid privacy report (ε \(report.epsilon), δ \(report.delta), \(report.steps) steps)")
            }
            guard let p = spec.privacy, let examples = known[silo]?.examples,
                  let plan = recordPlan(p, silo: silo, examples: Int(examples)) else {
                throw FederationError(.failedPrecondition, "silo '\(silo)''s DP-SGD cannot be planned for run '\(runID)' (its records were not described, or the run's privacy does not calibrate)")
            }
            let close = { (a: Double, b: Double) in abs(a - b) <= 1e-9 * max(abs(a), abs(b)) }
            guard close(report.noiseMultiplier, plan.noiseMultiplier), close(report.samplingRate, plan.samplingRate) else {
                throw FederationError(.invalidArgument,
                    "silo '\(silo)' reports noise multiplier \(report.noiseMultiplier) and sampling rate \(report.samplingRate), but run '\(runID)' plans \(plan.noiseMultiplier) and \(plan.samplingRate) for its \(examples) records")
            }
        }
    }
}
