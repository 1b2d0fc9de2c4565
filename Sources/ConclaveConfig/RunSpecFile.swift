public import ConclaveFederation
import ConclaveLearning
import ConclaveSecAgg
import ConclavePrivacy

/// `run.toml`: the run spec an ML engineer writes and `conclave run start --spec` sends.
public enum RunSpecFile {
    /// Parses a run spec. Relative evaluation paths resolve against `baseDirectoryOf` (a file path) when given.
    public static func parse(_ text: String, source: String, baseDirectoryOf: String? = nil) throws(ConfigError) -> RunSpec {
        let root = try ConfigSection.load(text: text, source: source)
        let name = try root.string("name", default: "run")
        let rounds = try root.int("rounds")
        let seed = try root.int("seed", default: 1)
        let secure = try secureAggregation(root, source: source)
        // One silo's "sum" is its own update: secure runs need two.
        let minSilos = try root.int("min_silos", default: secure == nil ? 1 : 2)
        let perRound = root.has("silos_per_round") ? try root.int("silos_per_round") : nil
        let deadline = try root.double("round_deadline_seconds", default: 300)

        let m = try root.section("model")
        let architecture = try m.choice("architecture", as: ModelSpec.Architecture.self)
        let hidden = m.has("hidden") ? try m.ints("hidden") : []
        let inputs = try m.int("input_features"), classes = try m.int("num_classes")
        let model: ModelSpec
        do {
            model = try ModelSpec(architecture: architecture, inputFeatures: inputs, hidden: hidden, classCount: classes)
        } catch {
            throw m.located("[model]: \(error.message)")
        }
        try m.rejectUnknownKeys()

        let t = try root.section("training")
        let training = TrainingConfig(
            localEpochs: try t.int("local_epochs", default: 1), batchSize: try t.int("batch_size", default: 32),
            learningRate: try t.double("learning_rate"),
            optimizer: try t.choice("optimizer", as: OptimizerKind.self, default: .sgd),
            momentum: try t.double("momentum", default: 0), seed: UInt64(truncatingIfNeeded: seed))
        try t.rejectUnknownKeys()

        var server = ServerOptimizerConfig()
        if let s = try root.optionalSection("server") {
            let kind = try s.choice("optimizer", as: ServerOptimizerConfig.Kind.self, default: .fedavg)
            let defaults = ServerOptimizerConfig(kind: kind)
            server = ServerOptimizerConfig(
                kind: kind, learningRate: try s.double("learning_rate", default: defaults.learningRate),
                beta1: try s.double("beta1", default: defaults.beta1), beta2: try s.double("beta2", default: defaults.beta2),
                tau: try s.double("tau", default: defaults.tau))
            try s.rejectUnknownKeys()
        }

        let privacy = try privacyConfig(root, source: source)

        var evaluation: DataSource?
        if let e = try root.optionalSection("evaluation") {
            evaluation = try DataSourceConfig.parse(e, relativeTo: baseDirectoryOf)
            try e.rejectUnknownKeys()
        }
        try root.rejectUnknownKeys()
        do {
            return try RunSpec(name: name, model: model, rounds: rounds, training: training, minSilos: minSilos,
                               silosPerRound: perRound, roundDeadlineSeconds: deadline, server: server,
                               seed: UInt64(truncatingIfNeeded: seed), evaluation: evaluation,
                               secureAggregation: secure, privacy: privacy)
        } catch {
            throw root.located(error.message)
        }
    }

    /// `[secure_aggregation]`: on unless `enabled = false`; every other key has a default.
    static func secureAggregation(_ root: ConfigSection, source: String) throws(ConfigError) -> SecureAggregationConfig? {
        let d = SecureAggregationDefaults.self
        var values = (clip: d.clipNorm, dropout: d.dropoutRate, corruption: d.corruptionRate, adversary: d.adversary,
                      prg: d.prg, timeout: d.phaseTimeoutSeconds, precision: d.precisionBits)
        var enabled = true
        if let s = try root.optionalSection("secure_aggregation") {
            enabled = try s.bool("enabled", default: true)
            values = (try s.double("clip_norm", default: d.clipNorm), try s.double("dropout_rate", default: d.dropoutRate),
                      try s.double("corruption_rate", default: d.corruptionRate),
                      try s.choice("adversary", as: GraphParameters.Adversary.self, default: d.adversary),
                      try s.choice("prg", as: MaskGenerator.Kind.self, default: d.prg),
                      try s.double("phase_timeout_seconds", default: d.phaseTimeoutSeconds),
                      try s.int("precision_bits", default: d.precisionBits))
            try s.rejectUnknownKeys()
        }
        guard enabled else { return nil }
        do {
            return try SecureAggregationConfig(clipNorm: values.clip, dropoutRate: values.dropout,
                                               corruptionRate: values.corruption, adversary: values.adversary,
                                               prg: values.prg, phaseTimeoutSeconds: values.timeout,
                                               precisionBits: values.precision)
        } catch {
            throw root.located(error.message)
        }
    }

    /// `[privacy]`: `mode = "none"` (the default) or a mechanism with its noise — `noise_multiplier`, or an
    /// `epsilon` budget to calibrate it for — δ, accountant and (record mode) the per-example `clip_norm`.
    static func privacyConfig(_ root: ConfigSection, source: String) throws(ConfigError) -> PrivacyConfig? {
        guard let p = try root.optionalSection("privacy") else { return nil }
        let modeName = try p.string("mode", default: "none")
        let sigma = p.has("noise_multiplier") ? try p.double("noise_multiplier") : nil
        let epsilon = p.has("epsilon") ? try p.double("epsilon") : nil
        let delta = try p.double("delta", default: 1e-5)
        let accountant = try p.choice("accountant", as: AccountantKind.self, default: .pld)
        let clip = try p.double("clip_norm", default: 1)
        let adaptive = try p.bool("adaptive_clipping", default: false)
        let quantile = try p.double("target_quantile", default: 0.5)
        let clipRate = try p.double("clip_learning_rate", default: 0.2)
        let countNoise = p.has("count_noise_stddev") ? try p.double("count_noise_stddev") : nil
        try p.rejectUnknownKeys()
        if modeName == "none" { return nil }
        guard let mode = PrivacyConfig.Mode(rawValue: modeName) else {
            throw p.invalid("mode", "must be one of 'none', 'central', 'distributed', 'record', got '\(modeName)'")
        }
        do {
            let adaptiveClipping = adaptive
                ? try AdaptiveClipping(targetQuantile: quantile, learningRate: clipRate, countNoiseStddev: countNoise) : nil
            return try PrivacyConfig(mode: mode, noiseMultiplier: sigma, epsilon: epsilon, delta: delta,
                                     accountant: accountant, clipNorm: clip, adaptiveClipping: adaptiveClipping)
        } catch {
            throw root.located(error.message)
        }
    }

    public static func load(path: String) throws(ConfigError) -> RunSpec {
        try parse(ConfigFile.text(at: path), source: path, baseDirectoryOf: path)
    }
}
