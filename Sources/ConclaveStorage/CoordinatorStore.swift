public import ConclaveFederation
public import ConclavePrivacy
import Foundation
import GRDB

/// The coordinator's SQLite database (GRDB): runs, rounds, contributing silos, metrics and the checkpoint
/// index. Each round commits in one transaction, so the database never holds half a round.
/// WAL mode with a busy timeout: an operator or privacy officer reading the live database (`sqlite3`) never
/// blocks the coordinator's commits, and a short lock held by another writer is waited out, not failed on.
public final class CoordinatorStore: Sendable {
    let db: DatabasePool
    public let path: String

    public init(path: String) throws(StorageError) {
        self.path = path
        do {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var config = Configuration()
            config.foreignKeysEnabled = true
            config.busyMode = .timeout(10)
            db = try DatabasePool(path: path, configuration: config)
            try Schema.migrator.migrate(db)
        } catch {
            throw StorageError("cannot open coordinator database \(path): \(error)")
        }
    }

    /// Fails, naming the file, unless the database can be written now (a read-only file or mount, a full
    /// disk): the daemon checks this at start and exits instead of refusing every silo later.
    public func checkWritable() throws(StorageError) {
        do {
            try db.write { db in
                let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                try db.execute(sql: "PRAGMA user_version = \(version + 1)")
                try db.execute(sql: "PRAGMA user_version = \(version)")
            }
        } catch {
            throw StorageError("the coordinator database \(path) is not writable: \(error)")
        }
    }

    public struct RunRecord: Sendable, Equatable {
        public var id: String
        public var name: String
        public var spec: RunSpec
        public var specTOML: String
        public var status: String
        public var roundsPlanned: Int
        public var completedRounds: Int
        public var createdAt: Double
        public var message: String
    }

    public struct RoundRecord: Sendable, Equatable {
        public var runID: String
        public var round: Int
        public var startedAt: Double
        public var finishedAt: Double
        public var silos: [String]
        public var examples: Int
        public var trainLoss: Double?
        public var testAccuracy: Double?
        public var testLoss: Double?
        public var checkpointSHA256: String
        /// Secure rounds only: silos unmasked into the sum, and selected silos that dropped out.
        public var unmasked: Int?
        public var dropped: Int?
        /// Privacy runs only: cumulative ε of the run after this round, at δ.
        public var epsilon: Double?
        public var delta: Double?
        /// Record mode: each contributing silo's own cumulative ε after this round (at `delta`).
        public var siloEpsilon: [String: Double] = [:]
        /// Secure rounds: the clip norm used, and the next round's (adaptive clipping).
        public var clipNorm: Double?
        public var nextClipNorm: Double?
    }

    private func wrap<T>(_ what: String, _ body: () throws -> T) throws(StorageError) -> T {
        do { return try body() } catch let e as StorageError { throw e } catch {
            throw StorageError("\(what): \(error)")
        }
    }

    public func createRun(id: String, spec: RunSpec, specTOML: String, now: Double) throws(StorageError) {
        let json = try wrap("encode run spec") { String(decoding: try JSONEncoder().encode(spec), as: UTF8.self) }
        try wrap("create run \(id)") {
            try db.write { db in
                try db.execute(sql: """
                    INSERT INTO runs (id, name, spec_json, spec_toml, status, rounds_planned, created_at)
                    VALUES (?, ?, ?, ?, 'pending', ?, ?)
                    """, arguments: [id, spec.name, json, specTOML, spec.rounds, now])
            }
        }
    }

    public func setStatus(run: String, _ status: String, message: String = "") throws(StorageError) {
        try wrap("update run \(run)") {
            try db.write { db in
                try db.execute(sql: "UPDATE runs SET status = ?, message = ? WHERE id = ?",
                               arguments: [status, message, run])
            }
        }
    }

    private static func run(from row: Row) throws -> RunRecord {
        let json: String = row["spec_json"]
        return RunRecord(id: row["id"], name: row["name"],
                         spec: try JSONDecoder().decode(RunSpec.self, from: Data(json.utf8)),
                         specTOML: row["spec_toml"], status: row["status"], roundsPlanned: row["rounds_planned"],
                         completedRounds: row["completed_rounds"], createdAt: row["created_at"],
                         message: row["message"])
    }

    public func run(id: String) throws(StorageError) -> RunRecord? {
        try wrap("read run \(id)") {
            try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [id]).map(Self.run) }
        }
    }

    /// Every run, oldest first.
    public func runs() throws(StorageError) -> [RunRecord] {
        try wrap("list runs") {
            try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM runs ORDER BY created_at, rowid").map(Self.run) }
        }
    }

    /// The run the coordinator should drive: one already running, else the oldest pending.
    public func nextRunToDrive() throws(StorageError) -> RunRecord? {
        let all = try runs()
        return all.first { $0.status == "running" } ?? all.first { $0.status == "pending" }
    }

    public func rounds(run: String) throws(StorageError) -> [RoundRecord] {
        try wrap("read rounds of \(run)") {
            try db.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM rounds WHERE run_id = ? ORDER BY round", arguments: [run]).map { row in
                    let round: Int = row["round"]
                    let siloRows = try Row.fetchAll(db, sql: """
                        SELECT silo_id, epsilon FROM round_silos WHERE run_id = ? AND round = ? ORDER BY silo_id
                        """, arguments: [run, round])
                    let silos = siloRows.map { $0["silo_id"] as String }
                    var siloEpsilon = [String: Double]()
                    for r in siloRows { if let e: Double = r["epsilon"] { siloEpsilon[r["silo_id"]] = e } }
                    return RoundRecord(runID: run, round: round, startedAt: row["started_at"],
                                       finishedAt: row["finished_at"], silos: silos, examples: row["num_examples"],
                                       trainLoss: row["train_loss"], testAccuracy: row["test_accuracy"],
                                       testLoss: row["test_loss"], checkpointSHA256: row["checkpoint_sha256"],
                                       unmasked: row["unmasked"], dropped: row["dropped"], epsilon: row["epsilon"],
                                       delta: row["delta"], siloEpsilon: siloEpsilon, clipNorm: row["clip_norm"],
                                       nextClipNorm: row["next_clip_norm"])
                }
            }
        }
    }

    /// Records a closed round and its checkpoint in one transaction, and advances the run.
    public func commitRound(run: String, closed: RoundStateMachine.ClosedRound, checkpointSHA256: String,
                            checkpointPath: String, testAccuracy: Double?, testLoss: Double?,
                            roundsPlanned: Int, now: Double, ledger: [SignedEntry] = []) throws(StorageError) {
        try wrap("commit round \(closed.number) of \(run)") {
            try db.write { db in
                // The round's charges first: if they do not continue the ledger, nothing of the round is stored.
                try Self.appendLedger(ledger, db)
                try db.execute(sql: """
                    INSERT OR IGNORE INTO checkpoints (sha256, path, run_id, round, created_at) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [checkpointSHA256, checkpointPath, run, closed.number, now])
                let loss = closed.trainLoss
                try db.execute(sql: """
                    INSERT INTO rounds (run_id, round, started_at, finished_at, num_silos, num_examples, train_loss,
                                        test_accuracy, test_loss, checkpoint_sha256, unmasked, dropped, epsilon, delta,
                                        clip_norm, next_clip_norm)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [run, closed.number, closed.startedAt, closed.closedAt, closed.contributions.count,
                                     Int64(closed.examples), loss.isFinite ? loss : nil, testAccuracy, testLoss,
                                     checkpointSHA256, closed.secure?.unmasked, closed.secure?.dropped,
                                     closed.privacy?.epsilon, closed.privacy?.delta, closed.clipNorm, closed.nextClipNorm])
                for c in closed.contributions {
                    try db.execute(sql: """
                        INSERT INTO round_silos (run_id, round, silo_id, num_examples, train_loss, train_seconds,
                                                 epsilon, delta, noise_multiplier, sampling_rate, steps)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, arguments: [run, closed.number, c.silo, Int64(c.examples), c.trainLoss, c.trainSeconds,
                                         c.privacy?.epsilon, c.privacy?.delta, c.privacy?.noiseMultiplier,
                                         c.privacy?.samplingRate, c.privacy?.steps])
                }
                let metrics: [(String, Double?)] = [("train_loss", loss.isFinite ? loss : nil),
                    ("test_accuracy", testAccuracy), ("test_loss", testLoss),
                    ("seconds", closed.closedAt - closed.startedAt), ("silos", Double(closed.contributions.count)),
                    ("unmasked", closed.secure.map { Double($0.unmasked) }), ("dropped", closed.secure.map { Double($0.dropped) }),
                    ("epsilon", closed.privacy?.epsilon), ("clip_norm", closed.clipNorm)]
                for (name, value) in metrics {
                    guard let value else { continue }
                    try db.execute(sql: "INSERT INTO metrics (run_id, round, name, value) VALUES (?, ?, ?, ?)",
                                   arguments: [run, closed.number, name, value])
                }
                let status = closed.number >= roundsPlanned ? "completed" : "running"
                try db.execute(sql: "UPDATE runs SET completed_rounds = ?, status = ? WHERE id = ?",
                               arguments: [closed.number, status, run])
            }
        }
    }

    /// Records that an attempt at a round began ("open" until it commits or is abandoned); returns its row id.
    public func openAttempt(run: String, round: Int, now: Double) throws(StorageError) -> Int64 {
        try wrap("record round attempt") {
            try db.write { db in
                try db.execute(sql: "INSERT INTO round_attempts (run_id, round, outcome, reason, at) VALUES (?, ?, 'open', '', ?)",
                               arguments: [run, round, now])
                return db.lastInsertedRowID
            }
        }
    }

    /// Ends an open attempt with its outcome ("committed" or "abandoned").
    public func closeAttempt(id: Int64, outcome: String, reason: String, now: Double) throws(StorageError) {
        try wrap("record round attempt") {
            try db.write { db in
                try db.execute(sql: "UPDATE round_attempts SET outcome = ?, reason = ?, at = ? WHERE id = ?",
                               arguments: [outcome, reason, now, id])
            }
        }
    }

    /// Ends the newest open attempt at a round (used when a round is committed at restart).
    public func closeOpenAttempt(run: String, round: Int, outcome: String, reason: String, now: Double) throws(StorageError) {
        try wrap("record round attempt") {
            try db.write { db in
                try db.execute(sql: """
                    UPDATE round_attempts SET outcome = ?, reason = ?, at = ?
                    WHERE id = (SELECT MAX(id) FROM round_attempts WHERE run_id = ? AND round = ? AND outcome = 'open')
                    """, arguments: [outcome, reason, now, run, round])
            }
        }
    }

    /// Marks attempts left "open" by a process that died as abandoned (a crash), so `round_attempts` lists
    /// every attempt — except those `resumable` says can go on from their durable log; returns how many it closed.
    public func closeCrashedAttempts(now: Double, resumable: (String, Int) -> Bool = { _, _ in false }) throws(StorageError) -> Int {
        try wrap("record crash-abandoned attempts") {
            try db.write { db in
                let open = try Row.fetchAll(db, sql: "SELECT id, run_id, round FROM round_attempts WHERE outcome = 'open'")
                var closed = 0
                for row in open where !resumable(row["run_id"], row["round"]) {
                    try db.execute(sql: """
                        UPDATE round_attempts SET outcome = 'abandoned',
                        reason = 'the coordinator stopped without finishing it (crash)', at = ? WHERE id = ?
                        """, arguments: [now, row["id"] as Int64])
                    closed += 1
                }
                return closed
            }
        }
    }

    /// The newest attempt at a round still marked open (a resumed one).
    public func openAttemptID(run: String, round: Int) throws(StorageError) -> Int64? {
        try wrap("read round attempts") {
            try db.read { db in
                try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM round_attempts WHERE run_id = ? AND round = ? AND outcome = 'open'",
                                   arguments: [run, round])
            }
        }
    }

    /// The checkpoint files committed rounds refer to (by SHA-256); anything else in the directory is an orphan.
    public func referencedCheckpoints() throws(StorageError) -> Set<String> {
        try wrap("read checkpoint index") {
            try db.read { db in Set(try String.fetchAll(db, sql: "SELECT checkpoint_sha256 FROM rounds")) }
        }
    }

    /// A round dropped by `rewind`: kept because its release was real (what it cost stays charged).
    public struct DiscardedRound: Sendable, Equatable {
        public var round: Int
        public var unmasked: Int?
        public var dropped: Int?
        public var epsilon: Double?
    }

    /// Resumes a run from committed round `round` (the operator's choice after a checkpoint was lost): later
    /// rounds move to `discarded_rounds` (their releases happened, so the run's accounting keeps counting
    /// them) and the run is running again from `round + 1`.
    public func rewind(run: String, toRound round: Int, reason: String, now: Double) throws(StorageError) {
        try wrap("rewind run \(run) to round \(round)") {
            try db.write { db in
                try db.execute(sql: """
                    INSERT INTO discarded_rounds (run_id, round, checkpoint_sha256, unmasked, dropped, epsilon, reason, at)
                    SELECT run_id, round, checkpoint_sha256, unmasked, dropped, epsilon, ?, ? FROM rounds
                    WHERE run_id = ? AND round > ?
                    """, arguments: [reason, now, run, round])
                try db.execute(sql: "DELETE FROM round_silos WHERE run_id = ? AND round > ?", arguments: [run, round])
                try db.execute(sql: "DELETE FROM metrics WHERE run_id = ? AND round > ?", arguments: [run, round])
                try db.execute(sql: "DELETE FROM rounds WHERE run_id = ? AND round > ?", arguments: [run, round])
                try db.execute(sql: "UPDATE runs SET completed_rounds = ?, status = 'running', message = '' WHERE id = ?",
                               arguments: [round, run])
            }
        }
    }

    public func discardedRounds(run: String) throws(StorageError) -> [DiscardedRound] {
        try wrap("read discarded rounds of \(run)") {
            try db.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM discarded_rounds WHERE run_id = ? ORDER BY id", arguments: [run]).map {
                    DiscardedRound(round: $0["round"], unmasked: $0["unmasked"], dropped: $0["dropped"], epsilon: $0["epsilon"])
                }
            }
        }
    }

    public func recordAttempt(run: String, round: Int, outcome: String, reason: String, now: Double) throws(StorageError) {
        try wrap("record round attempt") {
            try db.write { db in
                try db.execute(sql: "INSERT INTO round_attempts (run_id, round, outcome, reason, at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [run, round, outcome, reason, now])
            }
        }
    }

    public func attempts(run: String) throws(StorageError) -> [(round: Int, outcome: String, reason: String, at: Double)] {
        try wrap("read attempts") {
            try db.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM round_attempts WHERE run_id = ? ORDER BY id", arguments: [run])
                    .map { (round: $0["round"], outcome: $0["outcome"], reason: $0["reason"], at: $0["at"]) }
            }
        }
    }

    public func metrics(run: String) throws(StorageError) -> [(round: Int, name: String, value: Double)] {
        try wrap("read metrics") {
            try db.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM metrics WHERE run_id = ? ORDER BY round, name", arguments: [run])
                    .map { (round: $0["round"], name: $0["name"], value: $0["value"]) }
            }
        }
    }

    public func touchSilo(id: String, dataset: String, examples: UInt64, now: Double) throws(StorageError) {
        try wrap("record silo \(id)") {
            try db.write { db in
                try db.execute(sql: """
                    INSERT INTO silos (id, dataset, num_examples, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET dataset = excluded.dataset, num_examples = excluded.num_examples,
                                                  last_seen = excluded.last_seen
                    """, arguments: [id, dataset, Int64(examples), now, now])
            }
        }
    }

    /// How many silos the database has a row for.
    public func silosCount() throws(StorageError) -> Int {
        try wrap("count silos") { try db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM silos") ?? 0 } }
    }

    /// The identity key a silo was first seen with (trust on first use), if any.
    public func identityKey(silo: String) throws(StorageError) -> [UInt8]? {
        try wrap("read identity of silo \(silo)") {
            try db.read { db in
                try Data.fetchOne(db, sql: "SELECT identity_key FROM silos WHERE id = ?", arguments: [silo]).map { Array($0) }
            }
        }
    }

    /// Records a silo's identity key unless one is already on record; returns the key on record.
    public func enrolIdentity(silo: String, key: [UInt8], dataset: String, examples: UInt64,
                              now: Double) throws(StorageError) -> [UInt8] {
        try wrap("enrol silo \(silo)") {
            try db.write { db in
                try db.execute(sql: """
                    INSERT INTO silos (id, dataset, num_examples, first_seen, last_seen, identity_key) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET identity_key = COALESCE(silos.identity_key, excluded.identity_key)
                    """, arguments: [silo, dataset, Int64(examples), now, now, Data(key)])
                let stored = try Data.fetchOne(db, sql: "SELECT identity_key FROM silos WHERE id = ?", arguments: [silo])
                return stored.map { Array($0) } ?? key
            }
        }
    }
}
