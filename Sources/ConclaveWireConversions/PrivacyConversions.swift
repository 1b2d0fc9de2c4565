public import ConclaveFederation
public import ConclaveWire
import ConclavePrivacy

extension PrivacyConfig {
    /// What a record-mode task tells each silo; nil for other modes.
    public func recordProto(plannedRounds: Int) -> Conclave_V1_RecordPrivacy? {
        guard mode == .record else { return nil }
        var p = Conclave_V1_RecordPrivacy()
        p.noiseMultiplier = noiseMultiplier ?? 0
        p.epsilon = epsilon ?? 0
        p.delta = delta
        p.clipNorm = clipNorm
        p.accountant = accountant.rawValue
        p.plannedRounds = UInt32(plannedRounds)
        return p
    }

    /// The silo's reading of a record-mode task (checked: a coordinator may not hand it nonsense).
    public init(record p: Conclave_V1_RecordPrivacy) throws(FederationError) {
        guard let kind = AccountantKind(rawValue: p.accountant) else {
            throw FederationError(.invalidArgument, "record privacy names an unknown accountant '\(p.accountant)' (known: pld, rdp)")
        }
        try self.init(mode: .record, noiseMultiplier: p.noiseMultiplier > 0 ? p.noiseMultiplier : nil,
                      epsilon: p.epsilon > 0 ? p.epsilon : nil, delta: p.delta, accountant: kind, clipNorm: p.clipNorm)
    }
}

extension SiloPrivacy {
    public var proto: Conclave_V1_PrivacyReport {
        var p = Conclave_V1_PrivacyReport()
        p.epsilon = epsilon
        p.delta = delta
        p.noiseMultiplier = noiseMultiplier
        p.samplingRate = samplingRate
        p.steps = UInt64(steps)
        return p
    }

    /// A silo's privacy report as it arrives: every number finite and in its range before it is stored.
    public init(proto p: Conclave_V1_PrivacyReport) throws(FederationError) {
        self.init(epsilon: try WireCheck.finite(p.epsilon, "privacy report ε", in: 0...1e9),
                  delta: try WireCheck.finite(p.delta, "privacy report δ", in: 0...1),
                  noiseMultiplier: try WireCheck.finite(p.noiseMultiplier, "privacy report noise multiplier", in: 0...1e9),
                  samplingRate: try WireCheck.finite(p.samplingRate, "privacy report sampling rate", in: 0...1),
                  steps: try WireCheck.count(UInt64(p.steps), "privacy report steps", max: 1 << 40))
    }
}
