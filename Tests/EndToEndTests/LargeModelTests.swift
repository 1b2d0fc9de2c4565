import ConclaveLearning
import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// A model of 50,000,010 parameters (logistic regression over 5,000,000 features) goes through the real
/// coordinator and a real agent: global weights down, the update back up, the checkpoint and the export.
@Suite(.serialized) struct LargeModelTests {
    @Test(.timeLimit(.minutes(10))) func fiftyMillionParametersGoThroughTheWire() throws {
        let dir = Fixtures.temporaryDirectory("conclave-large")
        let cluster = try Cluster(dir: dir)
        defer { cluster.stopAll() }
        let features = 5_000_000
        var bytes = [UInt8](repeating: 0, count: 4 * features)
        for i in stride(from: 0, to: bytes.count, by: 97) { bytes[i] = UInt8(i % 251) }
        try IDX.write(IDXArray(dimensions: [4, features], bytes: bytes), path: dir + "/images.gz")
        try IDX.write(IDXArray(dimensions: [4], bytes: [0, 1, 2, 3]), path: dir + "/labels.gz")
        try cluster.startCoordinator()
        try cluster.write("silo.toml", """
            [silo]
            id = "big"
            coordinator = "\(cluster.address)"
            [data]
            format = "idx"
            images = "images.gz"
            labels = "labels.gz"
            [connection]
            backoff_initial_seconds = 0.2
            backoff_max_seconds = 1
            [policy]
            require_secure_aggregation = false  # this test exercises the plain update path
            """)
        try cluster.start("silo", "conclave-client", ["--config", "\(dir)/silo.toml"])
        try cluster.write("run.toml", """
            name = "large"
            rounds = 1
            min_silos = 1
            round_deadline_seconds = 600
            [model]
            architecture = "logreg"
            input_features = \(features)
            num_classes = 10
            [training]
            batch_size = 4
            learning_rate = 0.1
            [secure_aggregation]
            enabled = false  # this test exercises the plain update path
            """)
        let target = ["--coordinator", cluster.address]
        let deadline = Date().addingTimeInterval(540)
        var started: [String: Any]?
        while started == nil, Date() < deadline {
            started = try? cluster.json(["run", "start", "--spec", "\(dir)/run.toml", "--json"] + target)
            if started == nil { usleep(200_000) }
        }
        let runID = try #require(started?["run_id"] as? String)
        var status: [String: Any] = [:]
        while Date() < deadline {
            status = (try? cluster.json(["run", "status", runID, "--json"] + target)) ?? [:]
            if status["status"] as? String == "completed" { break }
            usleep(500_000)
        }
        #expect(status["status"] as? String == "completed", "coordinator log:\n\(cluster.log("coordinator").suffix(2000))")
        let store = try CoordinatorStore(path: dir + "/coordinator.sqlite")
        let rounds = try store.rounds(run: runID)
        #expect(rounds.count == 1)
        #expect(rounds.first?.silos == ["big"])

        let export = try cluster.cli(["model", "export", "--run", runID, "--format", "safetensors", "--out",
                                      "\(dir)/model.safetensors"] + target)
        #expect(export.status == 0, "\(export.err)")
        let (tensors, _) = try Safetensors.read(path: dir + "/model.safetensors")
        #expect(tensors.map(\.shape) == [[10, features], [10]])
        #expect(tensors.reduce(0) { $0 + $1.values.count } == 50_000_010)
        // Training moved the weights: the biases differ from their seeded initial values.
        let initial = try ModelSpec(architecture: .logreg, inputFeatures: features, hidden: [], classCount: 10)
            .initialParameters(seed: 1)
        #expect(tensors[1].values != Array(initial[50_000_000...]))
        #expect(try cluster.stop("coordinator") == 0)
    }
}
