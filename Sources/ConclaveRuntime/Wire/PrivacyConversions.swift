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

    public init(proto p: Conclave_V1_PrivacyReport) {
        self.init(epsilon: p.epsilon, delta: p.delta, noiseMultiplier: p.noiseMultiplier, samplingRate: p.samplingRate,
                  steps: Int(clamping: p.steps))
    }
}
