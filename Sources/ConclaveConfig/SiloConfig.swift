public import ConclaveFederation

/// `silo.toml`: who the silo is, where the coordinator is, and where its private data lives.
public struct SiloConfig: Sendable, Equatable {
    public var siloID: String
    public var coordinator: HostPort
    /// File holding the silo's long-term Ed25519 identity key (created on first start, mode 0600).
    public var identityKeyPath: String
    /// The silo's own record of what record-mode runs have spent on its data (created on first use).
    public var privacyLedgerPath: String
    /// Refuse any record-mode run whose planned per-silo ε exceeds this (the silo's own ceiling); nil: none.
    public var maxEpsilon: Double?
    public var data: DataSource
    public var datasetName: String
    public var classCount: Int?
    /// OpenBLAS threads for local training.
    public var threads: Int
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
        let ledger = ConfigFile.resolve(try silo.string("privacy_ledger", default: "\(id).privacy-ledger.json"), relativeTo: source)
        try silo.rejectUnknownKeys()

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
        if let training = try root.optionalSection("training") {
            threads = try training.int("threads", default: 1)
            guard threads >= 1 else { throw training.invalid("threads", "must be at least 1") }
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
        return SiloConfig(siloID: id, coordinator: address, identityKeyPath: identity, privacyLedgerPath: ledger,
                          maxEpsilon: maxEpsilon, data: data, datasetName: name, classCount: classes,
                          threads: threads, backoffInitialSeconds: initial, backoffMaxSeconds: maximum,
                          logLevel: level)
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
