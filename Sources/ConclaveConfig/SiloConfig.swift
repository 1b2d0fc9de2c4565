public import ConclaveFederation
import Foundation

/// `silo.toml`: who the silo is, where the coordinator is, and where its private data lives.
public struct SiloConfig: Sendable, Equatable {
    public var siloID: String
    public var coordinator: HostPort
    /// File holding the silo's long-term Ed25519 identity key (created on first start, mode 0600).
    public var identityKeyPath: String
    /// Directory of the silo's TLS identity (`cert.pem`, `key.pem`, `ca.pem`), written by
    /// `conclave-client enroll` and renewed by the agent (`[silo] tls_identity`, default `<id>.tls`).
    public var tlsIdentityPath: String = ""
    /// Plaintext to a coordinator with `insecure = true` (`[silo] insecure`); never the default.
    public var insecure = false
    /// The silo's own record of what record-mode runs have spent on its data (created on first use).
    public var privacyLedgerPath: String
    /// Refuse any record-mode run whose planned per-silo ε exceeds this (the silo's own ceiling); nil: none.
    public var maxEpsilon: Double?
    /// What the silo will take part in (`[policy]`); the defaults protect it.
    public var policy: SiloPolicy
    /// The silo's record of rounds it sent a masked input for (`[silo] masked_journal`).
    public var maskedJournalPath: String
    public var data: DataSource
    public var datasetName: String
    public var classCount: Int?
    /// OpenBLAS threads for local training (1…cores).
    public var threads: Int
    /// Why `threads` differs from what the file asked (logged by the agent).
    public var threadsNote: String?
    public var backoffInitialSeconds: Double
    public var backoffMaxSeconds: Double
    public var logLevel: String

    public static func load(path: String) throws(ConfigError) -> SiloConfig {
        try parse(ConfigFile.text(at: path), source: path)
    }

    public static func parse(_ text: String, source: String) throws(ConfigError) -> SiloConfig {
        let root = try ConfigSection.load(text: text, source: source)
        let silo = try root.section("silo")
        let id = try silo.string("id")
        guard !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw silo.invalid("id", "must be non-empty and use only letters, digits, '-', '_' and '.'")
        }
        let address: HostPort
        let addressText = try silo.string("coordinator")
        do { address = try HostPort(parsing: addressText) } catch { throw silo.invalid("coordinator", error.message) }
        let identity = ConfigFile.resolve(try silo.string("identity_key", default: "\(id).identity.key"), relativeTo: source)
        let ledger = ConfigFile.resolve(try silo.string("privacy_ledger", default: "\(id).privacy-ledger.sqlite"), relativeTo: source)
        let journal = ConfigFile.resolve(try silo.string("masked_journal", default: "\(id).masked-rounds"), relativeTo: source)
        let tlsIdentity = ConfigFile.resolve(try silo.string("tls_identity", default: "\(id).tls"), relativeTo: source)
        let insecure = try silo.bool("insecure", default: false)
        try silo.rejectUnknownKeys()

        var policy = SiloPolicy()
        if let p = try root.optionalSection("policy") {
            policy.requireSecureAggregation = try p.bool("require_secure_aggregation", default: true)
            policy.minSilosInAggregate = try p.int("min_silos_in_aggregate", default: 3)
            guard (1...100_000).contains(policy.minSilosInAggregate) else {
                throw p.invalid("min_silos_in_aggregate", "must be 1 to 100000, got \(policy.minSilosInAggregate)")
            }
            if p.has("require_privacy") {
                let modes: [String]
                do { modes = try p.strings("require_privacy") } catch { modes = [try p.string("require_privacy")] }
                if let bad = modes.first(where: { !SiloPolicy.privacyModes.contains($0) }) {
                    throw p.invalid("require_privacy", "must name modes among \(SiloPolicy.privacyModes.joined(separator: ", ")), got '\(bad)'")
                }
                guard !modes.isEmpty else { throw p.invalid("require_privacy", "must name at least one mode") }
                policy.acceptedPrivacy = Set(modes)
            }
            try p.rejectUnknownKeys()
        }

        var maxEpsilon: Double?
        if let privacy = try root.optionalSection("privacy") {
            if privacy.has("max_epsilon") {
                let cap = try privacy.double("max_epsilon")
                guard cap > 0, cap.isFinite else { throw privacy.invalid("max_epsilon", "must be a positive number") }
                maxEpsilon = cap
            }
            try privacy.rejectUnknownKeys()
        }

        let dataSection = try root.section("data")
        let data = try DataSourceConfig.parse(dataSection, relativeTo: source)
        let name = try dataSection.string("name", default: "default")
        let classes = dataSection.has("num_classes") ? try dataSection.int("num_classes") : nil
        try dataSection.rejectUnknownKeys()

        var threads = 1
        var threadsNote: String?
        if let training = try root.optionalSection("training") {
            let asked = try training.int("threads", default: 1)
            // Out of range is not fatal (training still runs): clamped to 1…cores, and the agent says so.
            let cores = ProcessInfo.processInfo.activeProcessorCount
            threads = min(max(asked, 1), cores)
            if threads != asked {
                threadsNote = "\(source): [training] threads = \(asked) is \(asked < 1 ? "below 1" : "more than this machine's \(cores) cores"); using \(threads)"
            }
            try training.rejectUnknownKeys()
        }
        var initial = 0.5, maximum = 30.0
        if let conn = try root.optionalSection("connection") {
            initial = try conn.double("backoff_initial_seconds", default: initial)
            maximum = try conn.double("backoff_max_seconds", default: maximum)
            guard initial > 0, maximum >= initial else {
                throw conn.invalid("backoff_max_seconds", "must be at least backoff_initial_seconds (> 0)")
            }
            try conn.rejectUnknownKeys()
        }
        let level = try LogSettings.level(in: root)
        try root.rejectUnknownKeys()
        var config = SiloConfig(siloID: id, coordinator: address, identityKeyPath: identity, privacyLedgerPath: ledger,
                                 maxEpsilon: maxEpsilon, policy: policy, maskedJournalPath: journal, data: data, datasetName: name,
                                 classCount: classes, threads: threads, backoffInitialSeconds: initial, backoffMaxSeconds: maximum,
                                 logLevel: level)
        config.tlsIdentityPath = tlsIdentity
        config.insecure = insecure
        config.threadsNote = threadsNote
        return config
    }
}

/// A `[data]` or `[evaluation]` table: `format = "idx"` with `images` and `labels`, or `format = "csv"`
/// with `path` and `label_column`.
enum DataSourceConfig {
    enum Format: String, CaseIterable { case idx, csv }

    static func parse(_ section: ConfigSection, relativeTo source: String?) throws(ConfigError) -> DataSource {
        switch try section.choice("format", as: Format.self) {
        case .idx:
            return .idx(images: ConfigFile.resolve(try section.string("images"), relativeTo: source),
                        labels: ConfigFile.resolve(try section.string("labels"), relativeTo: source))
        case .csv:
            return .csv(path: ConfigFile.resolve(try section.string("path"), relativeTo: source),
                        labelColumn: try section.string("label_column"))
        }
    }
}
