import Foundation
import ConclaveConfig
import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveSecAgg
import Testing

@Suite struct ConfigFileTests {
    static let run = """
        name = "fm"
        rounds = 30
        min_silos = 5
        silos_per_round = 5
        round_deadline_seconds = 60

        [model]
        architecture = "mlp"
        input_features = 784
        hidden = [128]
        num_classes = 10

        [training]
        local_epochs = 2
        batch_size = 32
        learning_rate = 0.01
        optimizer = "sgd"
        momentum = 0.9

        [server]
        optimizer = "fedadam"

        [evaluation]
        format = "idx"
        images = "test-images.gz"
        labels = "/abs/test-labels.gz"
        """

    @Test func runSpecParses() throws {
        let spec = try RunSpecFile.parse(Self.run, source: "run.toml", baseDirectoryOf: "/runs/run.toml")
        #expect(spec.rounds == 30)
        #expect(spec.model.summary == "mlp 784-128-10")
        #expect(spec.training == TrainingConfig(localEpochs: 2, batchSize: 32, learningRate: 0.01, optimizer: .sgd, momentum: 0.9, seed: 1))
        #expect(spec.server.kind == .fedadam)
        #expect(spec.server.learningRate == 0.01)
        #expect(spec.evaluation == .idx(images: "/runs/test-images.gz", labels: "/abs/test-labels.gz"))
    }

    @Test func runSpecErrorsNameTheKey() {
        let missing = Self.run.replacingOccurrences(of: "rounds = 30\n", with: "")
        #expect(throws: ConfigError("run.toml: missing key 'rounds'")) { try RunSpecFile.parse(missing, source: "run.toml") }
        let wrongType = Self.run.replacingOccurrences(of: "rounds = 30", with: "rounds = \"thirty\"")
        #expect(throws: ConfigError("run.toml:2: key 'rounds' must be an integer, got a string")) {
            try RunSpecFile.parse(wrongType, source: "run.toml")
        }
        let unknownModel = Self.run.replacingOccurrences(of: "architecture = \"mlp\"", with: "architecture = \"resnet\"")
        #expect(throws: ConfigError("run.toml:8: key 'model.architecture' must be one of 'mlp', 'logreg', got 'resnet'")) {
            try RunSpecFile.parse(unknownModel, source: "run.toml")
        }
        let typo = Self.run.replacingOccurrences(of: "batch_size", with: "batchsize")
        #expect(throws: ConfigError("run.toml:15: unknown key 'training.batchsize' (did you mean 'training.batch_size'?)")) { try RunSpecFile.parse(typo, source: "run.toml") }
        let quorum = Self.run.replacingOccurrences(of: "silos_per_round = 5", with: "silos_per_round = 2")
        #expect(throws: ConfigError("run.toml:4: silos_per_round (2) is below min_silos (5)")) {
            try RunSpecFile.parse(quorum, source: "run.toml")
        }
    }

    @Test func secureAggregationIsOnByDefaultAndConfigurable() throws {
        let plain = try RunSpecFile.parse(Self.run, source: "run.toml")
        #expect(plain.secureAggregation == (try SecureAggregationConfig()))
        let tuned = try RunSpecFile.parse(Self.run + """

            [secure_aggregation]
            clip_norm = 2.5
            dropout_rate = 0.3
            corruption_rate = 0.1
            adversary = "curious"
            prg = "chacha"
            phase_timeout_seconds = 5
            """, source: "run.toml")
        #expect(tuned.secureAggregation == (try SecureAggregationConfig(clipNorm: 2.5, dropoutRate: 0.3, corruptionRate: 0.1,
                                                                        adversary: .curious, prg: .chacha, phaseTimeoutSeconds: 5)))
        let off = try RunSpecFile.parse(Self.run + "\n[secure_aggregation]\nenabled = false\nclip_norm = 3\n", source: "run.toml")
        #expect(off.secureAggregation == nil)
        let noQuorum = Self.run.replacingOccurrences(of: "min_silos = 5\nsilos_per_round = 5\n", with: "")
        #expect(try RunSpecFile.parse(noQuorum, source: "run.toml").minSilos == 2, "secure runs default to two silos")
        #expect(throws: ConfigError("run.toml:2: secure aggregation needs min_silos of at least 2 (one silo's sum is its own update), got 1")) {
            try RunSpecFile.parse(noQuorum.replacingOccurrences(of: "name = \"fm\"", with: "name = \"fm\"\nmin_silos = 1"),
                                  source: "run.toml")
        }
        #expect(throws: ConfigError("run.toml:28: secure_aggregation.clip_norm must be positive, got -1.0")) {
            try RunSpecFile.parse(Self.run + "\n[secure_aggregation]\nclip_norm = -1\n", source: "run.toml")
        }
        #expect(throws: ConfigError("run.toml:28: key 'secure_aggregation.prg' must be one of 'aes', 'chacha', got 'rc4'")) {
            try RunSpecFile.parse(Self.run + "\n[secure_aggregation]\nprg = \"rc4\"\n", source: "run.toml")
        }
    }

    @Test func privacyModeParsesAndRefusesWhatIsNotThereYet() throws {
        #expect(try RunSpecFile.parse(Self.run, source: "run.toml").privacy == nil)
        let central = try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"central\"\nnoise_multiplier = 1.2\ndelta = 1e-6\n",
                                            source: "run.toml")
        #expect(central.privacy == (try PrivacyConfig(mode: .central, noiseMultiplier: 1.2, delta: 1e-6)))
        let record = try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"record\"\nepsilon = 3\nclip_norm = 0.5\n",
                                           source: "run.toml")
        #expect(record.privacy == (try PrivacyConfig(mode: .record, epsilon: 3, clipNorm: 0.5)))
        // central with a budget: σ is calibrated for the run's rounds when the spec is read.
        let budget = try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"central\"\nepsilon = 2\n", source: "run.toml")
        let sigma = try #require(budget.privacy?.noiseMultiplier)
        let spent = try Accountant.epsilon(noiseMultiplier: sigma, samplingRate: 1, steps: budget.rounds, delta: 1e-5)
        #expect(spent <= 2 && spent > 1.99, "σ \(sigma) spends ε \(spent)")
        #expect(throws: ConfigError("run.toml:27: privacy needs noise_multiplier or epsilon (a budget to calibrate the noise for)")) {
            try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"record\"\n", source: "run.toml")
        }
        #expect(throws: ConfigError("run.toml:30: privacy takes noise_multiplier or epsilon, not both")) {
            try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"record\"\nepsilon = 1\nnoise_multiplier = 1\n", source: "run.toml")
        }
        let distributed = try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"distributed\"\nepsilon = 1\n", source: "run.toml")
        #expect(distributed.privacy?.mode == .distributed && (distributed.privacy?.noiseMultiplier ?? 0) > 1)
        #expect(throws: ConfigError("run.toml:27: privacy.mode = \"distributed\" adds its noise under secure aggregation: enable [secure_aggregation]")) {
            try RunSpecFile.parse(Self.run + "\n[secure_aggregation]\nenabled = false\n[privacy]\nmode = \"distributed\"\nepsilon = 1\n",
                                  source: "run.toml")
        }
        #expect(throws: ConfigError("run.toml:28: key 'privacy.mode' must be one of 'none', 'central', 'distributed', 'record', got 'local'")) {
            try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"local\"\n", source: "run.toml")
        }
        let plain = Self.run + "\n[secure_aggregation]\nenabled = false\n[privacy]\nmode = \"central\"\nnoise_multiplier = 1\n"
        #expect(throws: ConfigError.self) { try RunSpecFile.parse(plain, source: "run.toml") }
        #expect(throws: ConfigError("run.toml:29: privacy.noise_multiplier must be positive, got 0.0")) {
            try RunSpecFile.parse(Self.run + "\n[privacy]\nmode = \"central\"\nnoise_multiplier = 0\n", source: "run.toml")
        }
    }

    @Test func siloConfigParsesBothDataFormats() throws {
        let idx = try SiloConfig.parse("""
            [silo]
            id = "hospital-north"
            coordinator = "10.0.0.1:7300"
            [data]
            format = "idx"
            images = "imgs.gz"
            labels = "lbls.gz"
            """, source: "/etc/conclave/silo.toml")
        #expect(idx.siloID == "hospital-north")
        #expect(idx.coordinator == HostPort(host: "10.0.0.1", port: 7300))
        #expect(idx.data == .idx(images: "/etc/conclave/imgs.gz", labels: "/etc/conclave/lbls.gz"))
        let csv = try SiloConfig.parse("""
            [silo]
            id = "bank"
            coordinator = "localhost:1"
            [data]
            format = "csv"
            path = "/data/x.csv"
            label_column = "fraud"
            [training]
            threads = 2
            [privacy]
            max_epsilon = 4
            """, source: "silo.toml")
        #expect(csv.data == .csv(path: "/data/x.csv", labelColumn: "fraud"))
        #expect(csv.threads == 2)
        #expect(csv.maxEpsilon == 4)
        #expect(idx.maxEpsilon == nil)
        #expect(idx.privacyLedgerPath == "/etc/conclave/hospital-north.privacy-ledger.sqlite")
    }

    @Test func siloConfigErrors() {
        #expect(throws: ConfigError("silo.toml:3: key 'silo.coordinator' 'nowhere' is not host:port (e.g. 127.0.0.1:7300)")) {
            try SiloConfig.parse("[silo]\nid = \"a\"\ncoordinator = \"nowhere\"\n[data]\nformat = \"csv\"\npath = \"x\"\nlabel_column = \"y\"\n",
                                 source: "silo.toml")
        }
        #expect(throws: ConfigError("silo.toml: missing key 'data'")) {
            try SiloConfig.parse("[silo]\nid = \"a\"\ncoordinator = \"h:1\"\n", source: "silo.toml")
        }
        #expect(throws: ConfigError("silo.toml:5: key 'data.format' must be one of 'idx', 'csv', got 'parquet'")) {
            try SiloConfig.parse("[silo]\nid = \"a\"\ncoordinator = \"h:1\"\n[data]\nformat = \"parquet\"\n", source: "silo.toml")
        }
        #expect(throws: ConfigError("/no/silo.toml: no such file")) { try SiloConfig.load(path: "/no/silo.toml") }
        #expect(throws: ConfigError.self) {
            try SiloConfig.parse("[silo]\nid = \"a\"\ncoordinator = \"h:1\"\n[data]\nformat = \"csv\"\npath = \"x\"\nlabel_column = \"y\"\n[privacy]\nmax_epsilon = -1\n",
                                 source: "silo.toml")
        }
    }

    @Test func coordinatorConfigParses() throws {
        let c = try CoordinatorConfig.parse("""
            [server]
            listen = "0.0.0.0:7300"
            insecure = true
            [storage]
            database = "state/coordinator.sqlite"
            checkpoints = "/var/lib/conclave/checkpoints"
            [federation]
            allowed_silos = ["a", "b"]
            [log]
            level = "debug"
            """, source: "/etc/conclave/coordinator.toml")
        #expect(c.listen == HostPort(host: "0.0.0.0", port: 7300))
        #expect(c.database == "/etc/conclave/state/coordinator.sqlite")
        #expect(c.allowedSilos == ["a", "b"])
        #expect(c.logLevel == "debug")
        #expect(throws: ConfigError("c.toml:2: key 'server.listen' must be a string, got an integer")) {
            try CoordinatorConfig.parse("[server]\nlisten = 7300\n", source: "c.toml")
        }
    }
}

/// Config errors name file, line and key for every kind of error, and suggest the key a typo meant.
@Suite struct ConfigHardeningTests {
    static let coordinator = """
        [server]
        listen = "127.0.0.1:7300"
        insecure = true
        [storage]
        databse = "c.sqlite"
        checkpoints = "ckpt"
        """

    @Test func aTypoIsReportedAsAnUnknownKeyWithTheKeyItMeant() {
        #expect(throws: ConfigError("c.toml:5: unknown key 'storage.databse' (did you mean 'storage.database'?)")) {
            try CoordinatorConfig.parse(Self.coordinator, source: "c.toml")
        }
        // An optional key misspelt: the suggestion comes from the keys the table may hold.
        let text = Self.coordinator.replacingOccurrences(of: "databse", with: "database") + "\n[federation]\nliveness_secnds = 3\n"
        #expect(throws: ConfigError("c.toml:8: unknown key 'federation.liveness_secnds' (did you mean 'federation.liveness_seconds'?)")) {
            try CoordinatorConfig.parse(text, source: "c.toml")
        }
        let badID = Self.coordinator.replacingOccurrences(of: "databse", with: "database") + "\n[federation]\nallowed_silos = [\"ok\", \"not ok\"]\n"
        #expect(throws: ConfigError.self) { try CoordinatorConfig.parse(badID, source: "c.toml") }
        let idle = Self.coordinator.replacingOccurrences(of: "databse", with: "database")
            .replacingOccurrences(of: "[storage]", with: "stream_idle_seconds = 0\n[storage]")
        #expect(throws: ConfigError("c.toml:4: key 'server.stream_idle_seconds' must be 1 to 3600, got 0")) {
            try CoordinatorConfig.parse(idle, source: "c.toml")
        }
    }

    static let silo = """
        [silo]
        id = "bank"
        coordinator = "localhost:1"
        [data]
        format = "csv"
        path = "x.csv"
        label_column = "y"
        """

    @Test func siloPolicyDefaultsProtectAndParse() throws {
        let plain = try SiloConfig.parse(Self.silo, source: "silo.toml")
        #expect(plain.policy == SiloPolicy())
        #expect(plain.policy.requireSecureAggregation && plain.policy.minSilosInAggregate == 3)
        let custom = try SiloConfig.parse(Self.silo + """

            [policy]
            require_secure_aggregation = false
            min_silos_in_aggregate = 5
            require_privacy = ["record", "distributed"]
            """, source: "silo.toml")
        #expect(custom.policy == SiloPolicy(requireSecureAggregation: false, minSilosInAggregate: 5,
                                            acceptedPrivacy: ["record", "distributed"]))
        let one = try SiloConfig.parse(Self.silo + "\n[policy]\nrequire_privacy = \"central\"\n", source: "silo.toml")
        #expect(one.policy.acceptedPrivacy == ["central"])
        #expect(throws: ConfigError("silo.toml:9: key 'policy.require_privacy' must name modes among none, record, central, distributed, got 'local'")) {
            try SiloConfig.parse(Self.silo + "\n[policy]\nrequire_privacy = [\"local\"]\n", source: "silo.toml")
        }
        #expect(throws: ConfigError("silo.toml:9: key 'policy.min_silos_in_aggregate' must be 1 to 100000, got 0")) {
            try SiloConfig.parse(Self.silo + "\n[policy]\nmin_silos_in_aggregate = 0\n", source: "silo.toml")
        }
        #expect(throws: ConfigError("silo.toml:9: unknown key 'policy.require_secure' (did you mean 'policy.require_secure_aggregation'?)")) {
            try SiloConfig.parse(Self.silo + "\n[policy]\nrequire_secure = true\n", source: "silo.toml")
        }
    }
}

extension ConfigHardeningTests {
    /// The example configs in Examples/ parse with every key they show.
    @Test func theExamplesParse() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Examples").path
        let coordinator = try CoordinatorConfig.load(path: examples + "/coordinator.toml")
        #expect(coordinator.metricsListen == HostPort(host: "127.0.0.1", port: 9300))
        #expect(coordinator.streamIdleSeconds == 30)
        #expect(coordinator.tls?.directory == examples + "/pki")
        #expect(coordinator.tls?.enrolListen == HostPort(host: "127.0.0.1", port: 7301))
        let silo = try SiloConfig.load(path: examples + "/silo.toml")
        #expect(silo.policy == SiloPolicy())
        #expect(silo.maskedJournalPath.hasSuffix("hospital-north.masked-rounds"))
        #expect(silo.tlsIdentityPath == examples + "/hospital-north.tls" && !silo.insecure)
    }
}

/// Plaintext only when asked for; mutual TLS needs the CA directory and an enrolment address.
@Suite struct CoordinatorTLSConfigTests {
    static let base = """
        [server]
        listen = "127.0.0.1:7300"
        [storage]
        database = "c.sqlite"
        checkpoints = "ckpt"
        """

    @Test func tlsOrAnExplicitInsecureIsRequired() throws {
        do {
            _ = try CoordinatorConfig.parse(Self.base, source: "c.toml")
            Issue.record("a coordinator with neither [tls] nor insecure = true was accepted")
        } catch {
            #expect(error.message.contains("conclave ca init") && error.message.contains("insecure = true"), "\(error)")
        }
        let tls = Self.base + "\n[tls]\ndir = \"pki\"\nenrol_listen = \"127.0.0.1:7301\"\ncertificate_days = 2\n"
        let config = try CoordinatorConfig.parse(tls, source: "/etc/conclave/c.toml")
        #expect(config.tls?.directory == "/etc/conclave/pki")
        #expect(config.tls?.certificateSeconds == 172_800.0)
        #expect(config.tls?.tokenSeconds == 86_400.0)
        let both = Self.base.replacingOccurrences(of: "[storage]", with: "insecure = true\n[storage]") + "\n[tls]\ndir = \"pki\"\nenrol_listen = \"127.0.0.1:7301\"\n"
        #expect(throws: ConfigError.self) { try CoordinatorConfig.parse(both, source: "c.toml") }
        #expect(throws: ConfigError.self) { try CoordinatorConfig.parse(Self.base + "\n[tls]\ndir = \"pki\"\n", source: "c.toml") }
        #expect(throws: ConfigError.self) { try CoordinatorConfig.parse(Self.base + "\n[tls]\ndir = \"pki\"\nenrol_listen = \"x\"\n", source: "c.toml") }
    }
}
