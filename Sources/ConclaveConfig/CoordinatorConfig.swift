import ConclaveFederation

/// `coordinator.toml`: where the daemon listens and keeps its state.
public struct CoordinatorConfig: Sendable, Equatable {
    public var listen: HostPort
    /// When set, the bound address ("host:port") is written here once the server listens (useful with port 0).
    public var addressFile: String?
    public var database: String
    public var checkpointDirectory: String
    /// Only these silos may join; nil admits any silo whose data fits the run.
    public var allowedSilos: Set<String>?
    public var livenessSeconds: Double
    public var logLevel: String
    /// Longest a silo's upload or secure stream may stay silent while the coordinator waits for it.
    public var streamIdleSeconds: Int64 = 30
    /// Where Prometheus metrics are served over HTTP (`[metrics] listen`); nil: not served.
    public var metricsListen: HostPort?
    /// Mutual TLS and enrolment (`[tls]`); nil only with `[server] insecure = true`.
    public var tls: TLSSettings?
    /// `[privacy]`: the privacy ledger's signing key (Ed25519, created 0600 on first start; default beside the
    /// database), its origin (the name its checkpoints carry), and whether a DP run may release a silo's data
    /// that has no registered budget (`require_budgets`, default true: such silos are left out of the run).
    public var ledgerKeyPath: String = ""
    public var ledgerOrigin: String = "conclave"
    public var requireBudgets = true

    /// `[tls]`: the directory `conclave ca init` made (CA, coordinator certificate and their keys), where
    /// enrolment is served, and how long issued certificates and tokens last.
    public struct TLSSettings: Sendable, Equatable {
        public var directory: String
        public var enrolListen: HostPort
        public var certificateSeconds: Double
        public var tokenSeconds: Double
    }

    public static func load(path: String) throws(ConfigError) -> CoordinatorConfig {
        try parse(ConfigFile.text(at: path), source: path)
    }

    public static func parse(_ text: String, source: String) throws(ConfigError) -> CoordinatorConfig {
        let root = try ConfigSection.load(text: text, source: source)
        let server = try root.section("server")
        let listenText = try server.string("listen")
        let listen: HostPort
        do { listen = try HostPort(parsing: listenText) } catch { throw server.invalid("listen", error.message) }
        let addressFile = server.has("address_file") ? try server.string("address_file") : nil
        let idle = try server.int("stream_idle_seconds", default: 30)
        guard (1...3600).contains(idle) else { throw server.invalid("stream_idle_seconds", "must be 1 to 3600, got \(idle)") }
        let insecure = try server.bool("insecure", default: false)
        try server.rejectUnknownKeys()
        var tls: TLSSettings?
        if let t = try root.optionalSection("tls") {
            let enrolText = try t.string("enrol_listen")
            let enrol: HostPort
            do { enrol = try HostPort(parsing: enrolText) } catch { throw t.invalid("enrol_listen", error.message) }
            let days = try t.double("certificate_days", default: 30)
            guard days > 0, days <= 3650 else { throw t.invalid("certificate_days", "must be above 0 and at most 3650, got \(days)") }
            let hours = try t.double("token_hours", default: 24)
            guard hours > 0, hours <= 24 * 30 else { throw t.invalid("token_hours", "must be above 0 and at most 720, got \(hours)") }
            tls = TLSSettings(directory: ConfigFile.resolve(try t.string("dir"), relativeTo: source), enrolListen: enrol,
                              certificateSeconds: days * 86_400, tokenSeconds: hours * 3600)
            try t.rejectUnknownKeys()
            if insecure { throw server.invalid("insecure", "contradicts the [tls] table: choose mutual TLS or plaintext") }
        } else if !insecure {
            throw ConfigError("\(source): no [tls] table: the coordinator serves mutual TLS only (make the CA with 'conclave ca init' and set [tls] dir and enrol_listen), or set [server] insecure = true for plaintext")
        }

        let storage = try root.section("storage")
        let database = try storage.string("database")
        let checkpoints = try storage.string("checkpoints")
        try storage.rejectUnknownKeys()

        var allowed: Set<String>?
        var liveness = 15.0
        if let fed = try root.optionalSection("federation") {
            if fed.has("allowed_silos") {
                let ids = try fed.strings("allowed_silos")
                if let bad = ids.first(where: { id in (try? WireCheck.name(id, "silo id")) == nil }) {
                    throw fed.invalid("allowed_silos", "holds '\(bad)', which is not a silo id (letters, digits, '-', '_', '.'; at most 128 bytes)")
                }
                allowed = Set(ids)
            }
            liveness = try fed.double("liveness_seconds", default: liveness)
            guard liveness > 0 else { throw fed.invalid("liveness_seconds", "must be positive") }
            try fed.rejectUnknownKeys()
        }
        var metrics: HostPort?
        if let m = try root.optionalSection("metrics") {
            let text = try m.string("listen")
            do { metrics = try HostPort(parsing: text) } catch { throw m.invalid("listen", error.message) }
            try m.rejectUnknownKeys()
        }
        var ledgerKey = "", origin = "conclave", requireBudgets = true
        if let p = try root.optionalSection("privacy") {
            if p.has("ledger_key") { ledgerKey = ConfigFile.resolve(try p.string("ledger_key"), relativeTo: source) }
            origin = try p.string("origin", default: origin)
            guard !origin.isEmpty, origin.count <= 128, !origin.contains("\n") else {
                throw p.invalid("origin", "must be one line of 1 to 128 characters")
            }
            requireBudgets = try p.bool("require_budgets", default: true)
            try p.rejectUnknownKeys()
        }
        let level = try LogSettings.level(in: root)
        try root.rejectUnknownKeys()
        var config = CoordinatorConfig(
            listen: listen, addressFile: addressFile.map { ConfigFile.resolve($0, relativeTo: source) },
            database: ConfigFile.resolve(database, relativeTo: source),
            checkpointDirectory: ConfigFile.resolve(checkpoints, relativeTo: source),
            allowedSilos: allowed, livenessSeconds: liveness, logLevel: level)
        config.streamIdleSeconds = Int64(idle)
        config.metricsListen = metrics
        config.tls = tls
        config.ledgerKeyPath = ledgerKey.isEmpty ? config.database + ".ledger-key" : ledgerKey
        config.ledgerOrigin = origin
        config.requireBudgets = requireBudgets
        return config
    }
}

enum LogSettings {
    static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    static func level(in root: ConfigSection) throws(ConfigError) -> String {
        guard let log = try root.optionalSection("log") else { return "info" }
        let level = try log.string("level", default: "info")
        guard levels.contains(level) else {
            throw log.invalid("level", "must be one of \(levels.joined(separator: ", ")), got '\(level)'")
        }
        try log.rejectUnknownKeys()
        return level
    }
}
