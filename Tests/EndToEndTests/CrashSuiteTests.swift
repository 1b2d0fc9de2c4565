import ConclaveConfig
import ConclaveFederation
import ConclaveLearning
import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// Real `conclave-coordinator` processes killed with SIGKILL at protocol points (reached deterministically through
/// the test-only `CONCLAVE_TEST_CRASH_AT` hook), restarted, with three real agents in a central-DP secure run.
/// Whatever the point: rounds are gap-free and unique, every checkpoint verifies, ε per round is monotone and
/// the accountant's, no orphan files remain, the crashed attempt is in `round_attempts`, and no silo's update is
/// masked into two sums (a silo that masked into the lost attempt sits the retried one out).
@Suite struct CrashSuiteTests {
    /// Every protocol point: before any masking (the attempt starts over or resumes), after masked inputs (the
    /// attempt resumes from its log), mid checkpoint write (replayed and committed), after the checkpoint
    /// (committed from its pending record).
    static let completing = ["idle", "task-sent", "secure-phase:sharing", "secure-phase:collecting", "masked-input",
                             "secure-phase:checking", "unmasking-share", "mid-checkpoint", "checkpoint-written"]

    static let rounds = 3

    static let spec = """
        name = "crash"
        rounds = \(rounds)
        min_silos = 2
        round_deadline_seconds = 60
        [model]
        architecture = "logreg"
        input_features = 8
        num_classes = 3
        [training]
        learning_rate = 0.1
        [secure_aggregation]
        clip_norm = 2
        phase_timeout_seconds = 10
        [privacy]
        mode = "central"
        noise_multiplier = 2.0
        """

    /// Starts the federation with the coordinator set to die at `point`; returns once it died and was restarted.
    func crashAndRestart(at point: String, cluster: Cluster) throws -> String {
        try enrolFirst(cluster)
        try cluster.startCoordinator(environment: ["CONCLAVE_TEST_CRASH_AT": point])
        try cluster.write("run.toml", Self.spec)
        let started = try waitFor("the coordinator to accept the run", timeout: 30) {
            try? cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json", "--coordinator", cluster.address])
        }
        let runID = try #require(started["run_id"] as? String)
        for i in 0..<3 { try cluster.startBlobSilo(i) }  // after the run exists, so every point is reached in it
        let coordinator = try #require(cluster.processes["coordinator"])
        _ = try waitFor("the coordinator to reach \(point)", timeout: 60) { coordinator.isRunning ? nil : true }
        #expect(coordinator.terminationReason == .uncaughtSignal && coordinator.terminationStatus == SIGKILL,
                "the coordinator should have died at \(point): \(cluster.log("coordinator").suffix(400))")
        #expect(cluster.log("coordinator").contains("crash hook: SIGKILL at \(point)"))
        try cluster.startCoordinator()
        return runID
    }

    @Test(.timeLimit(.minutes(5)), arguments: completing)
    func aCrashAtEachPointLosesNoRound(point: String) throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-crash"))
        defer { cluster.stopAll() }
        let runID = try crashAndRestart(at: point, cluster: cluster)
        let status = try waitFor("the run to complete after the restart", timeout: 180) {
            let s = try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])
            return s?["status"] as? String == "completed" ? s : nil
        }
        #expect(status["rounds_completed"] as? Int == Self.rounds)
        try checkInvariants(cluster: cluster, runID: runID, crashedAt: point)
    }

    /// A graceful stop (SIGTERM) after silos masked their updates into the attempt: the attempt is left open
    /// for the restarted coordinator to resume, not abandoned (silos would refuse a second attempt of the
    /// round and a run needing all of them would stall).
    @Test(.timeLimit(.minutes(5))) func aGracefulStopMidRoundResumesTheAttempt() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-term"))
        defer { cluster.stopAll() }
        try enrolFirst(cluster)
        try cluster.startCoordinator(environment: ["CONCLAVE_TEST_CRASH_AT": "term@masked-input"])
        try cluster.write("run.toml", Self.spec.replacingOccurrences(of: "min_silos = 2", with: "min_silos = 3"))
        let started = try waitFor("the coordinator to accept the run", timeout: 30) {
            try? cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json", "--coordinator", cluster.address])
        }
        let runID = try #require(started["run_id"] as? String)
        for i in 0..<3 { try cluster.startBlobSilo(i) }
        let coordinator = try #require(cluster.processes["coordinator"])
        _ = try waitFor("the coordinator to stop", timeout: 60) { coordinator.isRunning ? nil : true }
        #expect(coordinator.terminationReason == .exit && coordinator.terminationStatus == 0)
        #expect(cluster.log("coordinator").contains("secure attempt left open"))
        try cluster.startCoordinator()
        let status = try waitFor("the run to complete after the restart", timeout: 180) {
            let s = try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])
            return s?["status"] as? String == "completed" ? s : nil
        }
        #expect(status["rounds_completed"] as? Int == Self.rounds)
        try checkInvariants(cluster: cluster, runID: runID, crashedAt: "masked-input")
        // The stop broke the silos' streams (they resumed) rather than telling them the round was over.
        for i in 0..<3 { #expect(!cluster.log("silo\(i)").contains("ended without this update"), "silo\(i)") }
    }

    /// The silos enrol with a coordinator that has no crash point set (enrolment is not what is crashed here).
    func enrolFirst(_ cluster: Cluster) throws {
        try cluster.startCoordinator()
        for i in 0..<3 { try cluster.writeBlobSilo(i) }
        #expect(try cluster.stop("coordinator") == 0)
    }

    func checkInvariants(cluster: Cluster, runID: String, crashedAt point: String) throws {
        let store = try CoordinatorStore(path: cluster.dir + "/coordinator.sqlite")
        let checkpoints = try CheckpointStore(directory: cluster.dir + "/checkpoints")
        let run = try #require(try store.run(id: runID))
        let rounds = try store.rounds(run: runID)
        #expect(rounds.map(\.round) == Array(1...Self.rounds), "rounds without gaps or duplicates")
        for r in rounds {
            #expect(throws: Never.self) { _ = try checkpoints.load(sha256: r.checkpointSHA256, model: run.spec.model, server: run.spec.server) }
        }
        // ε per round: monotone, and what the accountant gives for that many releases.
        let p = try #require(run.spec.privacy)
        let sigma = p.effectiveNoiseMultiplier(clipNorm: 2, dimension: run.spec.model.parameterCount)
        var last = 0.0
        for r in rounds {
            let epsilon = try #require(r.epsilon)
            #expect(epsilon > last)
            #expect(abs(epsilon - p.epsilon(afterRounds: r.round, noiseMultiplier: sigma)) < 1e-9)
            last = epsilon
        }
        // No orphans: every file in the checkpoint directory is a committed round's checkpoint.
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: cluster.dir + "/checkpoints"))
        #expect(files == Set(rounds.map { "\($0.checkpointSHA256).safetensors" }), "orphans: \(files)")
        // Every attempt is accounted for: none is left open; the one the crash cut short was resumed from its
        // log (or, after the checkpoint reached the disk, committed from its pending record).
        let attempts = try store.attempts(run: runID)
        #expect(attempts.allSatisfy { $0.outcome != "open" }, "\(attempts)")
        let log = cluster.log("coordinator")
        if point == "idle" {
            #expect(attempts.allSatisfy { $0.outcome == "committed" })
        } else if point == "checkpoint-written" {
            #expect(attempts.contains { $0.reason.contains("pending record") }, "\(attempts)")
        } else {
            #expect(log.contains("from its log"))
        }
        // No silo masked an input into two attempts of one round; none had to sit a round out.
        for i in 0..<3 {
            let journal = (try? String(contentsOfFile: cluster.dir + "/silo-\(i).masked-rounds", encoding: .utf8)) ?? ""
            let rounds = journal.split(separator: "\n").map { $0.split(separator: "\t").prefix(2).joined(separator: "/") }
            #expect(Set(rounds).count == rounds.count, "silo-\(i) journal: \(journal)")
            #expect(!cluster.log("silo\(i)").contains("reason=already-masked"))
        }
        #expect(!log.contains("round abandoned"), "the crashed attempt resumes; no round starts over")
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
