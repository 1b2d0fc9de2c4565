import ConclaveFederation
import ConclaveAdminClient
import ConclaveAgent
import ConclaveCoordinator
import ConclaveSupport
import ConclaveWireConversions
import ConclaveStorage
import ConclaveTesting
import Foundation
import GRDB
import Logging
import Testing

/// Disk and database faults against the run driver (in process, real SQLite and checkpoint files): a commit
/// that fails keeps its aggregate and retries it, a lost checkpoint is reported and resumed from by the
/// operator, crash leftovers are cleaned up, and a reader of the live database never costs a round.
@Suite struct FaultTests {
    let silo = SiloInfo(id: "a", examples: 60, features: 8, classes: 3)

    func driver(_ dir: String) throws -> RunDriver {
        try RunDriver(config: InProcessCoordinator.config(directory: dir), logger: Logger(label: "fault"))
    }

    /// Hands out the open round and submits a zero update; returns the round number.
    @discardableResult
    func playRound(_ d: RunDriver, run: String) async throws -> Int {
        guard case .train(let task) = try await d.requestWork(from: silo) else { throw TestFailure("no task") }
        try await d.submit(from: silo, runID: run, round: task.round,
                           update: [Float](repeating: 0.001, count: task.weights.count), trainLoss: 0.1, trainSeconds: 0)
        return task.round
    }

    @Test func aCommitFaultKeepsTheAggregateAndRetriesWithoutRetraining() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-fault")
        let d = try driver(dir)
        let run = try await d.startRun(specTOML: DriverTests.spec, source: "run.toml").id
        try await playRound(d, run: run)
        // The checkpoint directory becomes unusable (root ignores permissions, so put a file in its place).
        let ckpt = dir + "/ckpt"
        try FileManager.default.moveItem(atPath: ckpt, toPath: ckpt + ".away")
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: ckpt))
        try await playRound(d, run: run)  // round 2 is aggregated; saving it fails
        #expect(await d.storageFault?.hasPrefix("storage fault:") == true)
        #expect(await d.status.contains("storage fault"))
        // Silos are told to wait, never to train round 2 again, however often they poll.
        for _ in 0..<20 {
            guard case .wait(let reason) = try await d.requestWork(from: silo) else {
                Issue.record("a silo was asked to train while the round was being saved"); return
            }
            #expect(reason.contains("being saved"))
            await d.tick()
        }
        #expect(try d.store.rounds(run: run).map(\.round) == [1])
        // The disk comes back: the kept aggregate is committed after the backoff, once.
        try FileManager.default.removeItem(atPath: ckpt)
        try FileManager.default.moveItem(atPath: ckpt + ".away", toPath: ckpt)
        for _ in 0..<100 where try d.store.rounds(run: run).count < 2 {
            try await Task.sleep(for: .milliseconds(100))
            await d.tick()
        }
        #expect(try d.store.rounds(run: run).map(\.round) == [1, 2])
        #expect(await d.storageFault == nil)
        #expect(try d.store.attempts(run: run).map(\.outcome) == ["committed", "committed"])
        #expect(try await playRound(d, run: run) == 3)
    }

    @Test func aCorruptCheckpointNeedsRepairAndResumesFromAnEarlierRound() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-repair")
        var d = try driver(dir)
        let run = try await d.startRun(specTOML: DriverTests.spec, source: "run.toml").id
        try await playRound(d, run: run)
        try await playRound(d, run: run)
        let rounds = try d.store.rounds(run: run)
        let latest = d.checkpoints.path(for: rounds[1].checkpointSHA256)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: latest))

        d = try driver(dir)
        try await d.prepare()
        await d.resume()
        let record = try #require(try d.store.run(id: run))
        #expect(record.status == "needs-repair")
        #expect(record.message.contains(latest))
        guard case .wait(let reason) = try await d.requestWork(from: silo) else { Issue.record("no run should be active"); return }
        #expect(reason == "no run is active")
        // Resuming from the corrupt round is refused; from round 1 works and round 2 runs again.
        let refused = await #expect(throws: FederationError.self) { try await d.resumeRun(run, fromRound: 5) }
        #expect(refused?.code == .notFound)
        let resumed = try await d.resumeRun(run, fromRound: 1)
        #expect(resumed.status == "running" && resumed.completedRounds == 1)
        #expect(try await playRound(d, run: run) == 2)
        #expect(try d.store.discardedRounds(run: run).map(\.round) == [2])
        #expect(try d.store.attempts(run: run).contains { $0.outcome == "discarded" } == false)
    }

    @Test func startUpRemovesOrphansAndRecordsCrashedAttempts() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-orphans")
        var d = try driver(dir)
        let run = try await d.startRun(specTOML: DriverTests.spec, source: "run.toml").id
        try await playRound(d, run: run)
        // A crash mid-round: round 2 was handed out (attempt open), a temp file and an uncommitted checkpoint remain.
        _ = try await d.requestWork(from: silo)
        let ckpt = dir + "/ckpt"
        try Data("partial".utf8).write(to: URL(fileURLWithPath: ckpt + "/.tmp-deadbeef"))
        let orphan = ckpt + "/" + String(repeating: "ab", count: 32) + ".safetensors"
        try Data("noised but never charged".utf8).write(to: URL(fileURLWithPath: orphan))
        let kept = d.checkpoints.path(for: try d.store.rounds(run: run)[0].checkpointSHA256)

        d = try driver(dir)  // the old driver is dropped without shutdown, as by kill -9
        try await d.prepare()
        let files = try FileManager.default.contentsOfDirectory(atPath: ckpt)
        #expect(files == [(kept as NSString).lastPathComponent])
        let attempts = try d.store.attempts(run: run)
        #expect(attempts.map(\.outcome) == ["committed", "abandoned"])
        #expect(attempts.last?.reason.contains("crash") == true)
    }

    @Test func aReaderOfTheLiveDatabaseNeverCostsARound() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-reader")
        let d = try driver(dir)
        let run = try await d.startRun(specTOML: DriverTests.spec, source: "run.toml").id
        // An operator holds a read transaction open (as `sqlite3` does mid-query) while rounds commit.
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // a transaction left open between calls, as in a sqlite3 shell
        let reader = try DatabaseQueue(path: dir + "/c.sqlite", configuration: unsafe)
        try reader.inDatabase { db in
            try db.execute(sql: "BEGIN")
            _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rounds")
        }
        try await playRound(d, run: run)
        try await playRound(d, run: run)
        try reader.inDatabase { db in try db.execute(sql: "COMMIT") }
        #expect(try d.store.rounds(run: run).map(\.round) == [1, 2])
        #expect(try d.store.attempts(run: run).allSatisfy { $0.outcome == "committed" })
    }
}
