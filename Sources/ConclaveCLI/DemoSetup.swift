import ArgumentParser
import ConclaveLearning
import ConclaveIdentity
import ConclaveAdminClient
import ConclaveSupport
import ConclaveCrypto
import ConclaveWire
import SwiftProtobuf
import Foundation

/// Lays out the demo's work directory: each silo's private data file and config, the coordinator's config,
/// and the run spec. Everything stays for inspection after the run.
struct DemoSetup {
    let root: String
    let dataDir: String
    let silos: Int
    let rounds: Int
    let localEpochs: Int
    let hidden: [Int]
    let alpha: Double
    let seed: Int
    let secureAggregation: Bool
    let privacy: DemoPrivacy
    let epsilon: Double
    let delta: Double
    /// Plaintext (`--insecure`); by default the demo makes a federation CA and enrols every silo over mutual TLS.
    let insecure: Bool
    static let marker = ".conclave-demo"

    init(workdir: String, dataDir: String, silos: Int, rounds: Int, localEpochs: Int, hidden: [Int], alpha: Double,
         seed: Int, secureAggregation: Bool, privacy: DemoPrivacy = .none, epsilon: Double = 3, delta: Double = 1e-5,
         insecure: Bool = false) throws {
        let fm = FileManager.default
        root = URL(fileURLWithPath: workdir).standardizedFileURL.path
        self.dataDir = dataDir
        self.silos = silos
        self.rounds = rounds
        self.localEpochs = localEpochs
        self.hidden = hidden
        self.alpha = alpha
        self.seed = seed
        self.secureAggregation = secureAggregation
        self.privacy = privacy
        self.epsilon = epsilon
        self.delta = delta
        self.insecure = insecure
        if fm.fileExists(atPath: root) {
            let contents = (try? fm.contentsOfDirectory(atPath: root)) ?? []
            guard contents.isEmpty || contents.contains(Self.marker) else {
                throw CLIError("--workdir \(root) exists and is not a demo work directory; choose another")
            }
            try fm.removeItem(atPath: root)  // a previous demo's directory: start afresh
        }
        try fm.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
        _ = fm.createFile(atPath: root + "/" + Self.marker, contents: Data())
    }

    func path(_ name: String) -> String { root + "/" + name }

    var trainImages: String { dataDir + "/train-images-idx3-ubyte.gz" }
    var trainLabels: String { dataDir + "/train-labels-idx1-ubyte.gz" }

    /// Splits the 60,000 training images across the silos (Dirichlet over labels) and writes each silo's share.
    func writeSiloData(log: (String) -> Void) throws {
        for file in [trainImages, trainLabels] where !FileManager.default.fileExists(atPath: file) {
            throw CLIError("\(file) is missing: install Debian's dataset-fashion-mnist (make demo does) or pass --data-dir")
        }
        let images = try IDX.read(path: trainImages)
        let labels = try IDX.read(path: trainLabels)
        let parts = try Partitioner.partition(labels: labels.bytes.map { Int32($0) }, classCount: 10, silos: silos,
                                              scheme: .dirichlet(alpha: alpha), seed: UInt64(seed))
        for (i, indices) in parts.enumerated() {
            let dir = path("silos/silo-\(i + 1)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try IDX.write(images.subset(indices), path: dir + "/train-images-idx3-ubyte.gz")
            try IDX.write(labels.subset(indices), path: dir + "/train-labels-idx1-ubyte.gz")
            var histogram = [Int](repeating: 0, count: 10)
            for j in indices { histogram[Int(labels.bytes[j])] += 1 }
            log("silo-\(i + 1): \(indices.count) examples, per label \(histogram.map(String.init).joined(separator: " "))")
        }
        let transport = insecure ? """
            # --insecure: plaintext gRPC, nobody authenticated.
            insecure = true
            """ : """

            # Mutual TLS: the federation CA, this coordinator's certificate and the operator's identity are in pki/
            # (made as 'conclave ca init' does); silos enrol through one-time bundles on the enrolment listener.
            [tls]
            dir = "pki"
            enrol_listen = "127.0.0.1:0"
            """
        if !insecure {
            _ = try FederationSetup.create(federation: "demo", dir: path("pki"), hosts: ["localhost", "127.0.0.1"],
                                           operator: "admin", days: 30)
        }
        try write("coordinator.toml", """
            # Demo coordinator on loopback, state in SQLite next to this file.
            [server]
            listen = "127.0.0.1:0"
            address_file = "coordinator.addr"
            \(transport)

            [storage]
            database = "coordinator.sqlite"
            checkpoints = "checkpoints"

            [federation]
            allowed_silos = [\((1...silos).map { "\"silo-\($0)\"" }.joined(separator: ", "))]
            \(insecure ? "\n# --insecure: no privacy officer can sign budgets, so DP runs go without the cross-run ledger.\n[privacy]\nrequire_budgets = false" : "")
            """)
        try write("run.toml", """
            name = "fashion-mnist-demo"
            rounds = \(rounds)
            seed = \(seed)
            min_silos = \(silos)
            round_deadline_seconds = 120

            [model]
            architecture = "mlp"
            input_features = 784
            hidden = [\(hidden.map(String.init).joined(separator: ", "))]
            num_classes = 10

            \(trainingTable)

            [server]
            optimizer = "fedavg"

            [secure_aggregation]
            # The coordinator only ever holds masked updates and their sum (Bonawitz et al. 2017).
            enabled = \(secureAggregation)
            clip_norm = 10
            dropout_rate = 0.2

            \(privacyTable)
            [evaluation]
            format = "idx"
            images = "\(dataDir)/t10k-images-idx3-ubyte.gz"
            labels = "\(dataDir)/t10k-labels-idx1-ubyte.gz"
            """)
    }

    /// Local training: plain SGD with small batches; DP-SGD (record mode) wants large Poisson batches and a
    /// large step, since every step pays for its noise (tuned on this demo, see Benchmarks/README.md).
    var trainingTable: String {
        let (batch, rate, momentum) = privacy == .record ? (2048, 4.0, 0.5) : (32, 0.01, 0.9)
        return """
            [training]
            local_epochs = \(localEpochs)
            batch_size = \(batch)
            learning_rate = \(rate)
            optimizer = "sgd"
            momentum = \(momentum)
            """
    }

    var privacyTable: String {
        switch privacy {
        case .none: return ""
        case .record:
            return """
                [privacy]
                # DP-SGD in every silo: each silo calibrates its own noise so that ε on its records ends at this budget.
                mode = "record"
                epsilon = \(epsilon)
                delta = \(delta)
                clip_norm = 1.0

                """
        case .central, .distributed:
            return """
                [privacy]
                mode = "\(privacy.rawValue)"
                epsilon = \(epsilon)
                delta = \(delta)

                """
        }
    }

    private func write(_ name: String, _ text: String) throws {
        try (text + "\n").write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    /// Starts the coordinator and waits until it has written its bound address.
    func startCoordinator(_ supervisor: ProcessSupervisor) async throws -> String {
        try supervisor.launch(name: "coordinator", executable: "conclave-coordinator",
                              arguments: ["--config", path("coordinator.toml")])
        for _ in 0..<600 {
            if let text = try? String(contentsOfFile: path("coordinator.addr"), encoding: .utf8), !text.isEmpty {
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            try supervisor.checkAlive()
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CLIError("the coordinator did not start within 60 s; see \(path("logs/coordinator.log"))")
    }

    /// The operator identity the demo's CLI calls use (none with --insecure).
    var operatorIdentity: String? { insecure ? nil : path("pki/operators/admin") }

    /// Over mutual TLS every silo enrols as a silo operator would: a one-time bundle from the coordinator
    /// (`conclave silo add`), then `conclave-client enroll` makes the silo's key and stores its certificate.
    func enrolAgents(_ supervisor: ProcessSupervisor, coordinator: String, target: CoordinatorOption) async throws {
        guard !insecure else { return }
        for i in 1...silos {
            let bundle = try await mintBundle(role: "silo", name: "silo-\(i)", dataset: "fashion-mnist", tokenHours: 1, target: target)
            let file = path("silos/silo-\(i)/enrol.json")
            try IdentityDirectory.writePrivate(String(decoding: try bundle.encoded(), as: UTF8.self), to: file)
            try supervisor.runToCompletion(name: "enrol-silo-\(i)", executable: "conclave-client",
                                           arguments: ["enroll", "--config", path("silos/silo-\(i)/silo.toml"), "--bundle", file])
        }
    }

    /// The privacy officer's identity (with its ledger signing key), enrolled like `conclave user add` +
    /// `conclave user enroll`; then one budget per silo on its Fashion-MNIST share.
    func registerBudgets(epsilon: Double, target: CoordinatorOption, log: (String) -> Void) async throws {
        guard !insecure, privacy != .none else { return }
        let officerDir = path("pki/officers/officer")
        let bundle = try await mintBundle(role: "privacy-officer", name: "officer", dataset: "", tokenHours: 1, target: target)
        let signing = try IdentityKeyFile.loadOrCreate(path: officerDir + "/signing.key").key
        _ = try await EnrolmentClient.enroll(bundle: bundle, into: IdentityDirectory(path: officerDir),
                                             prover: { statement in (signing.publicKey, signing.sign(statement)) })
        let officer = try CoordinatorOption.parse(["--coordinator", target.coordinator ?? "", "--identity", officerDir])
        let unit = privacy == .record ? "record" : "silo"
        for i in 1...silos {
            _ = try await appendOfficerEntry(.with {
                $0.kind = "registration"; $0.silo = "silo-\(i)"; $0.dataset = "fashion-mnist"; $0.unit = unit
                $0.epsilon = epsilon; $0.delta = delta
            }, target: officer)
        }
        log("privacy officer 'officer' enrolled (identity in pki/officers/officer); budgets registered: ε ≤ \(epsilon) at δ = \(delta) per silo on fashion-mnist (unit \(unit)), enforced across runs by the ledger")
    }

    var officerIdentity: String? { insecure || privacy == .none ? nil : path("pki/officers/officer") }

    func writeAgentConfigs(coordinator: String) throws {
        for i in 1...silos {
            let dir = "silos/silo-\(i)"
            try write("\(dir)/silo.toml", """
                # Silo agent config: this silo's identity, its coordinator, and its private data.
                [silo]
                id = "silo-\(i)"
                coordinator = "\(coordinator)"
                \(insecure ? "insecure = true" : "# TLS identity (cert.pem, key.pem, ca.pem): silo-\(i).tls/, written by 'conclave-client enroll'")

                [data]
                format = "idx"
                images = "train-images-idx3-ubyte.gz"
                labels = "train-labels-idx1-ubyte.gz"
                name = "fashion-mnist"

                [training]
                threads = 1

                # What this silo will take part in. Secure aggregation is required unless the demo runs without it;
                # a sum must hold at least this many silos (3 by default; fewer only in a demo this small).
                [policy]
                require_secure_aggregation = \(secureAggregation)
                min_silos_in_aggregate = \(silos <= 3 ? 2 : 3)
                """)
        }
    }

    func startAgents(_ supervisor: ProcessSupervisor) throws {
        for i in 1...silos {
            try supervisor.launch(name: "silo-\(i)", executable: "conclave-client",
                                  arguments: ["--config", path("silos/silo-\(i)/silo.toml")])
        }
    }
}
