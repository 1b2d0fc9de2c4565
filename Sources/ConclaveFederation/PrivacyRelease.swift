public import ConclavePrivacy
import ConclaveLearning

/// One silo's data released in one round, as the privacy ledger charges it: whose budget (silo, dataset,
/// privacy unit) and the mechanism with every parameter needed to recompute the cost.
public struct PrivacyRelease: Sendable, Equatable, Codable {
    public var silo: String
    public var dataset: String
    public var unit: String
    public var mechanism: Mechanism

    public init(silo: String, dataset: String, unit: String, mechanism: Mechanism) {
        self.silo = silo
        self.dataset = dataset
        self.unit = unit
        self.mechanism = mechanism
    }

    public var budget: BudgetKey { BudgetKey(silo: silo, dataset: dataset, unit: unit) }

    /// The budget unit a privacy mode protects: one record (DP-SGD in the silo) or the silo's whole contribution.
    public static func unit(for mode: PrivacyConfig.Mode) -> String { mode == .record ? "record" : "silo" }

    /// The dataset name a budget is kept under when a silo names none.
    public static func datasetName(_ name: String) -> String { name.isEmpty ? "default" : name }
}

/// What each round releases of each silo's data, for the ledger: computed from the run's parameters and what
/// the coordinator knows of the silo, never from a cost a silo reports.
extension RoundStateMachine {
    /// The releases of a round that closed with these contributions: every silo whose data is in the model.
    mutating func releases(_ open: OpenRound, contributions: [Contribution], secure: SecureSummary?) -> [PrivacyRelease] {
        guard let p = spec.privacy else { return [] }
        return contributions.compactMap { c in
            let mechanism: Mechanism?
            switch p.mode {
            case .record:
                // The plan the coordinator makes for the silo's records (its report was checked against it).
                mechanism = recordPlan(p, silo: c.silo, examples: Int(known[c.silo]?.examples ?? c.examples))?.release
            case .central:
                mechanism = centralMechanism(members: open.selected.count)?.release
            case .distributed:
                mechanism = open.secure?.tasks.values.first?.distributed.flatMap { ddg in
                    secure.map { s in
                        ddg.release(planned: PrivacyConfig.plannedShares(members: s.unmasked + s.dropped,
                                                                         dropoutRate: spec.secureAggregation?.dropoutRate ?? 0),
                                    unmasked: s.unmasked)
                    }
                }
            }
            return mechanism.map { release(silo: c.silo, mode: p.mode, $0) }
        }
    }

    /// What the next round would release of this silo's data, priced before it is selected. Conservative where
    /// the round's outcome is not known yet: a distributed sum is priced as if only `minSilos` shares survive.
    public mutating func plannedRelease(for silo: SiloInfo) -> PrivacyRelease? {
        guard let p = spec.privacy else { return nil }
        let members = max(spec.minSilos, spec.silosPerRound ?? spec.minSilos)
        switch p.mode {
        case .record:
            return recordPlan(p, silo: silo.id, examples: Int(silo.examples)).map { release(silo: silo.id, mode: p.mode, $0.release, dataset: silo.dataset) }
        case .central:
            return centralMechanism(members: members).map { release(silo: silo.id, mode: p.mode, $0.release, dataset: silo.dataset) }
        case .distributed:
            guard let config = spec.secureAggregation else { return nil }
            let ddg = p.distributedMechanism(members: members, clipNorm: config.clipNorm, dimension: spec.model.parameterCount,
                                             dropoutRate: config.dropoutRate, rotationSeed: [])
            let planned = PrivacyConfig.plannedShares(members: members, dropoutRate: config.dropoutRate)
            return release(silo: silo.id, mode: p.mode, ddg.release(planned: planned, unmasked: min(planned, spec.minSilos)),
                           dataset: silo.dataset)
        }
    }

    private func release(silo: String, mode: PrivacyConfig.Mode, _ mechanism: Mechanism, dataset: String? = nil) -> PrivacyRelease {
        PrivacyRelease(silo: silo, dataset: PrivacyRelease.datasetName(dataset ?? known[silo]?.dataset ?? ""),
                       unit: PrivacyRelease.unit(for: mode), mechanism: mechanism)
    }

    /// A silo's DP-SGD plan for this run (its sampling rate, multiplier and steps per round), as the silo
    /// calibrates it from the run's parameters and its record count: made once per silo and count.
    mutating func recordPlan(_ p: PrivacyConfig, silo: String, examples: Int) -> RecordPrivacyPlan? {
        if let cached = recordPlans[silo], cached.examples == examples { return cached.plan }
        let plan = try? RecordPrivacyPlan(privacy: p, examples: examples, training: spec.training, plannedRounds: spec.rounds)
        recordPlans[silo] = (examples, plan)
        return plan
    }
}
