import ConclaveCrypto
public import Foundation

/// Whose budget: a silo's dataset, for one privacy unit (`record`: one record of that dataset; `silo`: the
/// silo's whole contribution, central and distributed modes).
public struct BudgetKey: Codable, Sendable, Hashable, CustomStringConvertible {
    public var silo: String
    public var dataset: String
    public var unit: String

    public init(silo: String, dataset: String, unit: String) {
        self.silo = silo
        self.dataset = dataset
        self.unit = unit
    }

    public var description: String { "\(silo)/\(dataset)/\(unit)" }
}

/// A release described well enough to recompute its cost from the ledger alone: one case per kind of noise,
/// each with every parameter its accountant needs (the ledger, `verify` and the silo all cost it through `rdp`).
public enum Mechanism: Codable, Sendable, Equatable {
    /// `steps` compositions of the Poisson-subsampled Gaussian mechanism: DP-SGD inside a silo (record unit;
    /// q = expected batch / records) or the Gaussian sum of DP-FedAvg (silo unit; q = 1 per round).
    case subsampledGaussian(samplingRate: Double, noiseMultiplier: Double, steps: Int)
    /// One central DP-FedAvg sum: noise multiplier z on inputs clipped to `clipNorm`, `dimension` values
    /// rounded to the noise lattice (2^−`resolutionBits` of σ; the rounding adds step·√d to the sensitivity),
    /// and with adaptive clipping a clip-bit count noised at `countStddev`, paid out of z (z_Δ⁻² = z⁻² − σ_b⁻²).
    case centralGaussian(noiseMultiplier: Double, clipNorm: Double, dimension: Int, countStddev: Double?, resolutionBits: Int)
    /// One distributed-DP sum (Kairouz, Liu & Steinke 2021): each silo's noise share N_Z(0, localStddev²) on a
    /// grid of step `granularity`, inputs clipped to `clipNorm` and rounded conditionally (β), `dimension`
    /// values; the sum held `sharesUnmasked` shares of the `sharesPlanned` it was sized for.
    case distributedDiscreteGaussian(clipNorm: Double, granularity: Double, localStddev: Double, beta: Double,
                                     dimension: Int, sharesPlanned: Int, sharesUnmasked: Int)

    /// RDP of the whole release at `order`.
    public func rdp(order: Double) -> Double {
        switch self {
        case .subsampledGaussian(let q, let sigma, let steps):
            Double(steps) * RDP.subsampledGaussian(samplingRate: q, noiseMultiplier: sigma, order: order)
        case .centralGaussian:
            RDP.subsampledGaussian(samplingRate: 1, noiseMultiplier: effectiveMultiplier, order: order)
        case .distributedDiscreteGaussian(_, _, _, _, _, _, let unmasked):
            distributed.map { $0.rdp(order: order, shares: unmasked) } ?? .infinity
        }
    }

    private var distributed: DistributedDiscreteGaussian? {
        guard case .distributedDiscreteGaussian(let c, let gamma, let stddev, let beta, let d, _, _) = self else { return nil }
        // The rotation seed does not enter the cost.
        return DistributedDiscreteGaussian(clipNorm: c, granularity: gamma, localStddev: stddev, beta: beta,
                                           rotationSeed: Array(repeating: 0, count: 32), dimension: d)
    }

    /// The Gaussian multiplier a release achieves: for a central sum, z less the lattice rounding's share and,
    /// with a count, the combination 1/z² = 1/z_Δ² + 1/σ_b² of the update's and the count's.
    public var effectiveMultiplier: Double {
        switch self {
        case .subsampledGaussian(_, let sigma, _):
            return sigma
        case .centralGaussian(let z, let c, let d, let sigmaB, let bits):
            guard z > 0, c > 0, d >= 1, bits >= 1 else { return 0 }
            let effective = { (sigma: Double, sensitivity: Double, n: Int) in
                GaussianNoise(standardDeviation: sigma, resolutionBits: bits).effectiveNoiseMultiplier(sensitivity: sensitivity, dimension: n)
            }
            guard let sigmaB, sigmaB > 0 else { return effective(z * c, c, d) }
            let rest = 1 / (z * z) - 1 / (sigmaB * sigmaB)
            guard rest > 0 else { return 0 }
            let u = effective(c / rest.squareRoot(), c, d), b = effective(sigmaB, 1, 1)
            return 1 / (1 / (u * u) + 1 / (b * b)).squareRoot()
        case .distributedDiscreteGaussian(let c, _, let stddev, _, _, _, let unmasked):
            return stddev * Double(unmasked).squareRoot() / c
        }
    }

    /// Checks the parameters are ones the accountant covers, and that the cost is a finite number at every order
    /// a filter may pin or display (a ledger entry stores it; JSON has no infinity).
    public func validate() throws(PrivacyError) {
        try validateParameters()
        for order in RDP.defaultOrders + RenyiFilter.displayOrders where !(rdp(order: order).isFinite && rdp(order: order) >= 0) {
            throw PrivacyError("the release's RDP at order \(order) is not a finite number: its noise is too small to account")
        }
    }

    private func validateParameters() throws(PrivacyError) {
        switch self {
        case .centralGaussian(let z, let c, let d, let sigmaB, let bits):
            guard z > 0, z.isFinite, c > 0, c.isFinite, d >= 1, (1...40).contains(bits) else {
                throw PrivacyError("central release parameters out of range (z \(z), clip norm \(c), dimension \(d), lattice bits \(bits))")
            }
            if let sigmaB { guard sigmaB > z, sigmaB.isFinite else { throw PrivacyError("the count's noise σ_b = \(sigmaB) leaves no noise for the update (z = \(z))") } }
        case .subsampledGaussian(let q, let sigma, let steps):
            guard q > 0, q <= 1 else { throw PrivacyError("sampling rate must be in (0, 1], got \(q)") }
            guard sigma > 0, sigma.isFinite else { throw PrivacyError("noise multiplier must be positive, got \(sigma)") }
            guard steps >= 1 else { throw PrivacyError("steps must be at least 1, got \(steps)") }
        case .distributedDiscreteGaussian(_, _, _, _, _, let planned, let unmasked):
            guard distributed != nil else { throw PrivacyError("the distributed mechanism's clip norm, grid, noise, β or dimension are out of range") }
            guard planned >= 1, unmasked >= 1 else { throw PrivacyError("a distributed sum needs at least one share (planned \(planned), unmasked \(unmasked))") }
        }
    }

    /// The mechanism's name in `budget history` and the report.
    public var name: String {
        switch self {
        case .subsampledGaussian: "subsampled-gaussian"
        case .centralGaussian: "central-gaussian"
        case .distributedDiscreteGaussian: "distributed-discrete-gaussian"
        }
    }

    /// Every parameter, by the names `budget history --json` uses. Gaussian releases of every kind carry
    /// `noise_multiplier`, `sampling_rate` and `steps` (for a distributed sum: the multiplier its unmasked
    /// shares add up to, q = 1, one step).
    public var parameters: [String: Double] {
        switch self {
        case .subsampledGaussian(let q, let sigma, let steps):
            return ["noise_multiplier": sigma, "sampling_rate": q, "steps": Double(steps)]
        case .centralGaussian(let z, let c, let d, let sigmaB, let bits):
            var p = ["noise_multiplier": effectiveMultiplier, "sampling_rate": 1, "steps": 1, "z": z, "clip_norm": c,
                     "dimension": Double(d), "lattice_bits": Double(bits)]
            if let sigmaB { p["count_stddev"] = sigmaB }
            return p
        case .distributedDiscreteGaussian(let c, let gamma, let stddev, let beta, let d, let planned, let unmasked):
            return ["noise_multiplier": effectiveMultiplier, "sampling_rate": 1, "steps": 1,
                    "clip_norm": c, "granularity": gamma, "local_stddev": stddev, "beta": beta, "dimension": Double(d),
                    "shares_planned": Double(planned), "shares_unmasked": Double(unmasked)]
        }
    }
}

/// One append-only entry of the privacy ledger. Its canonical bytes (JSON, sorted keys, no whitespace) are
/// what is hashed into the chain and the Merkle tree and what every signature covers.
public struct LedgerEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// A budget's cap, fixed before any charge (signed by a privacy officer).
        case registration
        /// A raised (or lowered) cap: a new epoch; the guarantee from then on is weaker (signed by a privacy officer).
        case amendment
        /// A release was charged (signed by the coordinator, co-signed by the silo).
        case charge
        /// A release was refused by the filter.
        case refusal
    }

    public var seq: Int
    public var time: Double
    public var kind: Kind
    public var budget: BudgetKey
    public var run: String?
    public var round: Int?
    /// Registration and amendment: the cap and the filter's pinned order; `epoch` counts amendments.
    public var epsilonCap: Double?
    public var deltaCap: Double?
    public var order: Double?
    public var epoch: Int
    /// Charge and refusal: what was released and its stored (rounded-up) cost.
    public var mechanism: Mechanism?
    public var increment: RenyiFilter.Increment?
    /// After a charge: ε spent at the cap's δ (display; the guarantee is the cap).
    public var epsilonCumulative: Double?
    public var modelSHA256: String?
    public var reason: String?
    /// Who asked (the privacy officer's name for registrations and amendments).
    public var actor: String?
    /// Hex SHA-256 of the previous entry's canonical bytes ("" for the first).
    public var previous: String

    public init(seq: Int, time: Double, kind: Kind, budget: BudgetKey, epoch: Int, previous: String) {
        self.seq = seq
        self.time = time
        self.kind = kind
        self.budget = budget
        self.epoch = epoch
        self.previous = previous
    }

    public var canonicalBytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain values, optionals and arrays of doubles cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public var hashHex: String {
        var h = SHA256()
        canonicalBytes.withUnsafeBytes { h.update($0) }
        return h.finalize().hexString
    }
}

/// An entry with its signatures: signer name ("coordinator", "silo/<id>", "privacy-officer/<name>") → Ed25519
/// signature over the entry's canonical bytes.
public struct SignedEntry: Codable, Sendable, Equatable {
    public var entry: LedgerEntry
    public var signatures: [String: [UInt8]]

    public init(entry: LedgerEntry, signatures: [String: [UInt8]] = [:]) {
        self.entry = entry
        self.signatures = signatures
    }
}

/// A signed tree head: the ledger's size and Merkle root at a time, signed by the coordinator and co-signed by
/// silos that checked it extends the last one they signed (C2SP tlog-checkpoint body).
public struct LedgerCheckpoint: Codable, Sendable, Equatable {
    public var origin: String
    public var size: Int
    public var root: [UInt8]
    public var signatures: [String: [UInt8]]

    public init(origin: String, size: Int, root: [UInt8], signatures: [String: [UInt8]] = [:]) {
        self.origin = origin
        self.size = size
        self.root = root
        self.signatures = signatures
    }

    /// `<origin>\n<size>\n<base64 root>\n`, what is signed.
    public var body: [UInt8] { Array("\(origin)\n\(size)\n\(Data(root).base64EncodedString())\n".utf8) }
}

/// A round the coordinator committed: its model version and whose data it holds (`unit`: the budget unit its
/// DP mode charges, nil without DP). `discarded`: an operator resumed from an earlier round; its release stays.
public struct CommittedRound: Codable, Sendable, Equatable {
    public var run: String
    public var round: Int
    public var modelSHA256: String
    public var unit: String?
    public var silos: [String]
    public var committedAt: Double
    public var discarded: Bool

    public init(run: String, round: Int, modelSHA256: String, unit: String?, silos: [String], committedAt: Double, discarded: Bool) {
        self.run = run
        self.round = round
        self.modelSHA256 = modelSHA256
        self.unit = unit
        self.silos = silos
        self.committedAt = committedAt
        self.discarded = discarded
    }
}

/// A self-contained ledger for offline audit (`conclave budget export`, `conclave budget verify --ledger`):
/// every entry with its signatures, every checkpoint, and the public keys that signed them. The keys travel
/// with the export; an auditor compares their fingerprints with what the silos and officers publish.
public struct LedgerExport: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var entry: LedgerEntry
        public var signatures: [String: Data]
    }
    public struct Checkpoint: Codable, Sendable, Equatable {
        public var origin: String
        public var size: Int
        public var root: Data
        public var signatures: [String: Data]
    }

    public var format = "conclave-ledger-v1"
    public var origin: String
    public var entries: [Entry]
    public var checkpoints: [Checkpoint]
    public var keys: [String: Data]
    /// The coordinator's committed (and operator-discarded) rounds, so `verify` can check that every round that
    /// released a budgeted silo's data has its charge and that no charge lacks its round.
    public var rounds: [CommittedRound]?

    public init(origin: String, entries: [SignedEntry], checkpoints: [LedgerCheckpoint], keys: [String: [UInt8]],
                rounds: [CommittedRound]? = nil) {
        self.rounds = rounds
        self.origin = origin
        self.entries = entries.map { Entry(entry: $0.entry, signatures: $0.signatures.mapValues { Data($0) }) }
        self.checkpoints = checkpoints.map { Checkpoint(origin: $0.origin, size: $0.size, root: Data($0.root), signatures: $0.signatures.mapValues { Data($0) }) }
        self.keys = keys.mapValues { Data($0) }
    }

    public var signedEntries: [SignedEntry] { entries.map { SignedEntry(entry: $0.entry, signatures: $0.signatures.mapValues { Array($0) }) } }
    public var ledgerCheckpoints: [LedgerCheckpoint] {
        checkpoints.map { LedgerCheckpoint(origin: $0.origin, size: $0.size, root: Array($0.root), signatures: $0.signatures.mapValues { Array($0) }) }
    }
    public var publicKeys: [String: [UInt8]] { keys.mapValues { Array($0) } }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Reads an export, naming what is wrong with a malformed or truncated one.
    public static func decode(_ data: Data, source: String) throws(PrivacyError) -> LedgerExport {
        let export: LedgerExport
        do { export = try JSONDecoder().decode(LedgerExport.self, from: data) } catch {
            throw PrivacyError("\(source) is not a Conclave ledger export (malformed or truncated JSON): \(error)")
        }
        guard export.format == "conclave-ledger-v1" else {
            throw PrivacyError("\(source) has format '\(export.format)'; this version reads conclave-ledger-v1")
        }
        return export
    }
}
