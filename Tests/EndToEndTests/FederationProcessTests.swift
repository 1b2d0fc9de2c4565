import ConclaveCrypto
import ConclaveLearning
import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// The real coordinator and three real agents on loopback, driven through the `conclave` CLI, on a slice of
/// Fashion-MNIST: accuracy rises, every round is in the database, the coordinator survives a SIGTERM mid-run
/// and a misshapen silo, and the exported safetensors file holds the final weights.
@Suite(.serialized) struct FederationProcessTests {
    @Test(.timeLimit(.minutes(10))) func federationTrainsEndToEnd() throws {
        try #require(Fixtures.hasFashionMNIST, "Fashion-MNIST missing: install dataset-fashion-mnist (make test does)")
        let dir = Fixtures.temporaryDirectory("conclave-e2e")
        let cluster = try Cluster(dir: dir)
        defer { cluster.stopAll() }

        // Three silos with 1,500 training images each (non-IID), and 2,000 test images for the coordinator.
        let fm = Fixtures.fashionMNIST
        let images = try IDX.read(path: fm + "/train-images-idx3-ubyte.gz")
        let labels = try IDX.read(path: fm + "/train-labels-idx1-ubyte.gz")
        let parts = try Partitioner.partition(labels: labels.bytes.prefix(4500).map { Int32($0) }, classCount: 10, silos: 3,
                                              scheme: .dirichlet(alpha: 1), seed: 1)
        let testImages = try IDX.read(path: fm + "/t10k-images-idx3-ubyte.gz").subset(Array(0..<2000))
        let testLabels = try IDX.read(path: fm + "/t10k-labels-idx1-ubyte.gz").subset(Array(0..<2000))
        try IDX.write(testImages, path: dir + "/test-images.gz")
        try IDX.write(testLabels, path: dir + "/test-labels.gz")

        try cluster.startCoordinator()
        for (i, part) in parts.enumerated() {
            try startSilo(i, cluster: cluster, images: images.subset(part), labels: labels.subset(part))
        }
        // A fourth agent whose data has 5 features: the coordinator must refuse it and carry on.
        try cluster.write("odd.csv", "a,b,c,d,e,label\n" + (0..<20).map { "1,2,3,4,\($0),\($0 % 2)" }.joined(separator: "\n"))
        try cluster.write("odd.toml", """
            [silo]
            id = "odd"
            coordinator = "\(cluster.address)"
            [data]
            format = "csv"
            path = "odd.csv"
            label_column = "label"
            """)
        try cluster.start("odd", "conclave-client", ["--config", "\(dir)/odd.toml"])

        try cluster.write("run.toml", """
            name = "e2e"
            rounds = 4
            min_silos = 3
            round_deadline_seconds = 60
            [model]
            architecture = "mlp"
            input_features = 784
            hidden = [32]
            num_classes = 10
            [training]
            local_epochs = 1
            batch_size = 32
            learning_rate = 0.05
            momentum = 0.9
            [evaluation]
            format = "idx"
            images = "\(dir)/test-images.gz"
            labels = "\(dir)/test-labels.gz"
            """)
        let target = ["--coordinator", cluster.address]
        let started = try waitFor("the coordinator to accept the run", timeout: 30) {
            try? cluster.json(["run", "start", "--spec", "\(dir)/run.toml", "--json"] + target)
        }
        let runID = try #require(started["run_id"] as? String)

        // Stop the coordinator once a round is in, then start it again: the run must still finish every round.
        _ = try waitFor("round 1", timeout: 120) { () -> Bool? in
            let s = try? cluster.json(["run", "status", runID, "--json"] + target)
            return ((s?["rounds_completed"] as? Int) ?? 0) >= 1 ? true : nil
        }
        #expect(try cluster.stop("coordinator") == 0, "coordinator must exit 0 on SIGTERM")
        try cluster.startCoordinator()

        let status = try waitFor("the run to complete", timeout: 300) { () -> [String: Any]? in
            let s = try? cluster.json(["run", "status", runID, "--json"] + target)
            return s?["status"] as? String == "completed" ? s : nil
        }
        let rounds = try #require(status["rounds"] as? [[String: Any]])
        #expect(rounds.map { $0["round"] as? Int } == [1, 2, 3, 4])
        let accuracies = rounds.compactMap { $0["test_accuracy"] as? Double }
        #expect(accuracies.count == 4)
        #expect(accuracies.last! > 0.6, "accuracy \(accuracies)")
        #expect(accuracies.last! > accuracies.first!, "accuracy must rise: \(accuracies)")

        // The database holds every round, its three silos and a checkpoint that hashes to its name.
        let store = try CoordinatorStore(path: dir + "/coordinator.sqlite")
        let stored = try store.rounds(run: runID)
        #expect(stored.map(\.round) == [1, 2, 3, 4])
        #expect(stored.allSatisfy { $0.silos == ["silo-0", "silo-1", "silo-2"] })
        // Secure aggregation is on by default: every round unmasked the three agents' sum, none dropped.
        #expect(stored.allSatisfy { $0.unmasked == 3 && $0.dropped == 0 })
        #expect(rounds.allSatisfy { $0["secure_aggregation"] as? Bool == true && $0["unmasked"] as? Int == 3 })
        for r in stored {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/checkpoints/\(r.checkpointSHA256).safetensors"))
            #expect(bytes.withUnsafeBytes { SHA256.hex($0) } == r.checkpointSHA256)
        }
        let list = try cluster.json(["run", "list", "--json"] + target)
        #expect((list["runs"] as? [[String: Any]])?.count == 1)

        // The exported model loads back with PyTorch's Linear layout and equals the last checkpoint.
        let export = try cluster.cli(["model", "export", "--run", runID, "--format", "safetensors", "--out",
                                      "\(dir)/model.safetensors"] + target)
        #expect(export.status == 0, "\(export.err)")
        let (tensors, metadata) = try Safetensors.read(path: dir + "/model.safetensors")
        #expect(tensors.map(\.shape) == [[32, 784], [32], [10, 32], [10]])
        #expect(metadata["round"] == "4")
        let checkpoint = try Safetensors.read(path: "\(dir)/checkpoints/\(stored[3].checkpointSHA256).safetensors")
        #expect(tensors.map(\.values) == checkpoint.tensors.map(\.values))

        #expect(cluster.log("coordinator").contains("has 5 features per example"))
        #expect(try cluster.stop("coordinator") == 0)
        for i in 0..<3 { #expect(try cluster.stop("silo\(i)") == 0) }
    }

    /// Starts `run.toml` from the cluster's directory and waits until the run completes: its id and status JSON.
    func runToCompletion(_ cluster: Cluster) throws -> (String, [String: Any]) {
        let target = ["--coordinator", cluster.address]
        let started = try waitFor("the coordinator to accept the run", timeout: 30) {
            try? cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json"] + target)
        }
        let runID = try #require(started["run_id"] as? String)
        let status = try waitFor("the run to complete", timeout: 300) { () -> [String: Any]? in
            let s = try? cluster.json(["run", "status", runID, "--json"] + target)
            return s?["status"] as? String == "completed" ? s : nil
        }
        return (runID, status)
    }

    /// A two-round run spec for three silos and a 784-16-10 MLP, with the given training and extra tables.
    static func smallRunSpec(name: String, training: String, extra: String) -> String {
        """
        name = "\(name)"
        rounds = 2
        min_silos = 3
        round_deadline_seconds = 60
        [model]
        architecture = "mlp"
        input_features = 784
        hidden = [16]
        num_classes = 10
        [training]
        local_epochs = 1
        \(training)
        \(extra)
        """
    }

    /// Writes silo `i`'s data and config and starts its agent.
    func startSilo(_ i: Int, cluster: Cluster, images: IDXArray, labels: IDXArray) throws {
        try IDX.write(images, path: "\(cluster.dir)/silo\(i)-images.gz")
        try IDX.write(labels, path: "\(cluster.dir)/silo\(i)-labels.gz")
        try cluster.write("silo\(i).toml", """
            [silo]
            id = "silo-\(i)"
            coordinator = "\(cluster.address)"
            [data]
            format = "idx"
            images = "silo\(i)-images.gz"
            labels = "silo\(i)-labels.gz"
            [connection]
            backoff_initial_seconds = 0.2
            backoff_max_seconds = 1
            [policy]
            # Three silos give a threshold of 2: these test silos accept sums of two (the default asks for 3).
            min_silos_in_aggregate = 2
            """)
        try cluster.start("silo\(i)", "conclave-client", ["--config", "\(cluster.dir)/silo\(i).toml"])
    }

    @Test(.timeLimit(.minutes(10))) func recordPrivacyRunReportsEverySilosOwnEpsilon() throws {
        try #require(Fixtures.hasFashionMNIST, "Fashion-MNIST missing: install dataset-fashion-mnist (make test does)")
        let dir = Fixtures.temporaryDirectory("conclave-record")
        let cluster = try Cluster(dir: dir)
        defer { cluster.stopAll() }
        let fm = Fixtures.fashionMNIST
        let images = try IDX.read(path: fm + "/train-images-idx3-ubyte.gz")
        let labels = try IDX.read(path: fm + "/train-labels-idx1-ubyte.gz")
        try cluster.startCoordinator()
        // Three silos of different sizes: each calibrates its own noise to the same per-silo budget.
        let sizes = [800, 1200, 2000]
        var offset = 0
        for (i, n) in sizes.enumerated() {
            let part = Array(offset..<(offset + n))
            offset += n
            try startSilo(i, cluster: cluster, images: images.subset(part), labels: labels.subset(part))
        }
        try cluster.write("run.toml", Self.smallRunSpec(name: "record", training: "batch_size = 200\nlearning_rate = 1.0\nmomentum = 0.5", extra: """
            [privacy]
            mode = "record"
            epsilon = 2
            delta = 1e-5
            """))
        let (runID, status) = try runToCompletion(cluster)
        let target = ["--coordinator", cluster.address]
        let rounds = try #require(status["rounds"] as? [[String: Any]])
        let perSilo = rounds.compactMap { $0["silo_epsilon"] as? [String: Double] }
        #expect(perSilo.count == 2 && perSilo.allSatisfy { Set($0.keys) == ["silo-0", "silo-1", "silo-2"] })
        for silo in ["silo-0", "silo-1", "silo-2"] {
            let spent = perSilo.compactMap { $0[silo] }
            #expect(spent.count == 2 && spent[0] < spent[1] && spent[1] <= 2 && spent[1] > 1.99, "\(silo): \(spent)")
        }
        #expect((rounds.last?["epsilon"] as? Double) == perSilo.last?.values.max())

        // Each silo's own ledger says the same, and the coordinator's database holds every report.
        for i in 0..<3 {
            let view = try cluster.run("conclave-client", ["budget", "show", "--config", "\(dir)/silo\(i).toml", "--json"])
            let budgets = try #require((try JSONSerialization.jsonObject(with: Data(view.out.utf8)) as? [String: Any])?["budgets"] as? [[String: Any]])
            let own = try #require(budgets.first)
            #expect(budgets.count == 1 && own["releases"] as? Int == 2 && own["unit"] as? String == "record", "\(view.out)")
            // The ledger's RDP accounting (no registered budget here) is never below the run's PLD figure.
            let ledgerEpsilon = try #require(own["epsilon_spent"] as? Double)
            #expect(ledgerEpsilon >= (perSilo.last?["silo-\(i)"] ?? 0) - 1e-9 && ledgerEpsilon < 3, "\(ledgerEpsilon)")
        }
        let stored = try CoordinatorStore(path: dir + "/coordinator.sqlite").rounds(run: runID)
        #expect(stored.count == 2)
        for (db, reported) in zip(stored.map(\.siloEpsilon), perSilo) {
            #expect(db.keys == reported.keys && db.allSatisfy { abs($0.value - reported[$0.key]!) < 1e-12 })
        }
        let text = try cluster.cli(["run", "status", runID] + target)
        #expect(text.out.contains("ε per silo (δ 1e-05): silo-0"), "\(text.out)")
        #expect(cluster.log("silo0").contains("privacy spent"))
    }

    @Test(.timeLimit(.minutes(10))) func distributedPrivacyRunNoisesTheSumInsideTheSilos() throws {
        try #require(Fixtures.hasFashionMNIST, "Fashion-MNIST missing: install dataset-fashion-mnist (make test does)")
        let dir = Fixtures.temporaryDirectory("conclave-distributed")
        let cluster = try Cluster(dir: dir)
        defer { cluster.stopAll() }
        let fm = Fixtures.fashionMNIST
        let images = try IDX.read(path: fm + "/train-images-idx3-ubyte.gz")
        let labels = try IDX.read(path: fm + "/train-labels-idx1-ubyte.gz")
        try cluster.startCoordinator()
        for i in 0..<3 {
            let part = Array((i * 500)..<((i + 1) * 500))
            try startSilo(i, cluster: cluster, images: images.subset(part), labels: labels.subset(part))
        }
        try cluster.write("run.toml", Self.smallRunSpec(name: "distributed", training: "batch_size = 50\nlearning_rate = 0.1", extra: """
            [secure_aggregation]
            clip_norm = 1
            dropout_rate = 0.34
            [privacy]
            mode = "distributed"
            epsilon = 10
            """))
        let (_, status) = try runToCompletion(cluster)
        let rounds = try #require(status["rounds"] as? [[String: Any]])
        #expect(rounds.map { $0["unmasked"] as? Int } == [3, 3])
        // Noise sized for 2 of 3 survivors (dropout 0.34); all 3 stayed, so the sums held more noise than
        // planned and the run spends less than its budget.
        let spent = rounds.compactMap { $0["epsilon"] as? Double }
        #expect(spent.count == 2 && spent[0] < spent[1] && spent[1] < 10, "ε \(spent)")
        // The run says what dropout rate its noise was sized for.
        #expect((status["privacy"] as? String)?.contains("sized for a dropout rate of 0.34") == true, "\(status["privacy"] ?? "")")
    }

    @Test func cliReportsBadInputClearly() throws {
        let dir = Fixtures.temporaryDirectory("conclave-cli")
        let cluster = try Cluster(dir: dir)
        try cluster.write("run.toml", "rounds = \"many\"\n")
        let bad = try cluster.cli(["run", "start", "--spec", "\(dir)/run.toml", "--coordinator", cluster.address])
        #expect(bad.status != 0)
        #expect(bad.err.contains("run.toml:1: key 'rounds' must be an integer, got a string"))
        let down = try cluster.cli(["run", "list", "--coordinator", cluster.address])
        #expect(down.status == 1)
        #expect(down.err.contains("cannot reach the coordinator at \(cluster.address)"))
        let format = try cluster.cli(["model", "export", "--run", "x", "--format", "onnx", "--out", "m"])
        #expect(format.status == 2)
        #expect(format.err.contains("only 'safetensors' is supported"))
    }

    func waitFor<T>(_ what: String, timeout: Double, _ poll: () throws -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try poll() { return value }
            usleep(200_000)
        }
        throw TestFailure("timed out after \(Int(timeout)) s waiting for \(what)")
    }
}
