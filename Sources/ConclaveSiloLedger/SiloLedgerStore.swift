public import ConclavePrivacy
public import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB

/// A silo's own privacy ledger, in its own SQLite file (`[silo] privacy_ledger`): the charges it signed before
/// each release left, its own entries of the coordinator's ledger (registrations, amendments, charges,
/// refusals) that it checked were included and co-signed, the last checkpoint it co-signed (and the coordinator key it pinned), the runs it planned, and
/// which releases began to leave. Append-only (triggers), like the coordinator's.
public final class SiloLedgerStore: Sendable {
    let db: DatabaseQueue
    public let path: String

    public init(path: String) throws(SiloLedgerError) {
        self.path = path
        do {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var config = Configuration()
            config.busyMode = .timeout(10)
            // Two processes opening a new ledger at once would both create its tables: one migrates at a time.
            let lock = open(path + ".lock", O_CREAT | O_RDWR, 0o600)
            if lock >= 0 { flock(lock, LOCK_EX) }
            defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
            db = try DatabaseQueue(path: path, configuration: config)
            try Self.migrator.migrate(db)
        } catch {
            throw SiloLedgerError("cannot open this silo's privacy ledger \(path): \(error) — it records what the silo's data has spent: restore it, do not delete it")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-silo-ledger") { db in
            var sql = """
                CREATE TABLE charges (
                    run TEXT NOT NULL, round INTEGER NOT NULL, release INTEGER NOT NULL,
                    dataset TEXT NOT NULL, unit TEXT NOT NULL,
                    charge BLOB NOT NULL, signature BLOB NOT NULL,
                    PRIMARY KEY (run, round, release, dataset, unit)
                );
                CREATE TABLE sending (run TEXT NOT NULL, round INTEGER NOT NULL, release INTEGER NOT NULL,
                                      PRIMARY KEY (run, round, release));
                CREATE TABLE adopted (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL);
                CREATE TABLE witness (size INTEGER PRIMARY KEY, root BLOB NOT NULL, coordinator_key BLOB NOT NULL);
                CREATE TABLE plans (run TEXT PRIMARY KEY, plan BLOB NOT NULL);
                """
            for table in ["charges", "sending", "adopted", "witness", "plans"] {
                sql += """
                    CREATE TRIGGER \(table)_append_only_u BEFORE UPDATE ON \(table)
                        BEGIN SELECT RAISE(ABORT, 'the silo privacy ledger is append-only'); END;
                    CREATE TRIGGER \(table)_append_only_d BEFORE DELETE ON \(table)
                        BEGIN SELECT RAISE(ABORT, 'the silo privacy ledger is append-only'); END;
                    """
            }
            try db.execute(sql: sql)
        }
        return m
    }

    public struct StoredCharge: Sendable, Equatable {
        public let charge: SiloCharge
        public let signature: [UInt8]
    }

    public func charges() throws(SiloLedgerError) -> [StoredCharge] {
        try wrap("read charges") {
            try db.read { db in
                try Row.fetchAll(db, sql: "SELECT charge, signature FROM charges ORDER BY rowid").map {
                    StoredCharge(charge: try JSONDecoder().decode(SiloCharge.self, from: $0["charge"] as Data),
                                 signature: Array($0["signature"] as Data))
                }
            }
        }
    }

    /// Appends a signed charge (durably, before the release leaves).
    public func append(_ charge: SiloCharge, signature: [UInt8]) throws(SiloLedgerError) {
        try wrap("record the charge of run \(charge.run) round \(charge.round)") {
            try db.write { db in
                try db.execute(sql: "INSERT INTO charges (run, round, release, dataset, unit, charge, signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [charge.run, charge.round, charge.release, charge.budget.dataset, charge.budget.unit,
                                           try JSONEncoder().encode(charge), Data(signature)])
            }
        }
    }

    /// Marks a release as leaving: from now on a task for the same round is a new release.
    public func markSending(run: String, round: Int, release: Int) throws(SiloLedgerError) {
        try wrap("mark run \(run) round \(round) as sent") {
            try db.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO sending (run, round, release) VALUES (?, ?, ?)", arguments: [run, round, release])
            }
        }
    }

    public func isSending(run: String, round: Int, release: Int) throws(SiloLedgerError) -> Bool {
        try wrap("read what was sent") {
            try db.read { db in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM sending WHERE run = ? AND round = ? AND release = ?", arguments: [run, round, release]) ?? false
            }
        }
    }

    public func adopted() throws(SiloLedgerError) -> [LedgerEntry] {
        try wrap("read adopted budget entries") {
            try db.read { db in
                try Data.fetchAll(db, sql: "SELECT entry FROM adopted ORDER BY seq").map { try JSONDecoder().decode(LedgerEntry.self, from: $0) }
            }
        }
    }

    public struct Witnessed: Sendable, Equatable {
        public let size: Int
        public let root: [UInt8]
        public let coordinatorKey: [UInt8]

        public init(size: Int, root: [UInt8], coordinatorKey: [UInt8]) {
            self.size = size
            self.root = root
            self.coordinatorKey = coordinatorKey
        }
    }

    public func lastWitnessed() throws(SiloLedgerError) -> Witnessed? {
        try wrap("read the last co-signed checkpoint") {
            try db.read { db in
                try Row.fetchOne(db, sql: "SELECT size, root, coordinator_key FROM witness ORDER BY size DESC LIMIT 1").map {
                    Witnessed(size: $0["size"], root: Array($0["root"] as Data), coordinatorKey: Array($0["coordinator_key"] as Data))
                }
            }
        }
    }

    /// Records a checkpoint the silo co-signed and the budget entries it adopted with it, in one transaction.
    public func witnessed(_ w: Witnessed, adopting entries: [LedgerEntry]) throws(SiloLedgerError) {
        try wrap("record the co-signed checkpoint of size \(w.size)") {
            try db.write { db in
                for e in entries {
                    try db.execute(sql: "INSERT OR IGNORE INTO adopted (seq, entry) VALUES (?, ?)", arguments: [e.seq, Data(e.canonicalBytes)])
                }
                try db.execute(sql: "INSERT OR IGNORE INTO witness (size, root, coordinator_key) VALUES (?, ?, ?)",
                               arguments: [w.size, Data(w.root), Data(w.coordinatorKey)])
            }
        }
    }

    public func plan(run: String) throws(SiloLedgerError) -> Data? {
        try wrap("read the plan of run \(run)") {
            try db.read { db in try Data.fetchOne(db, sql: "SELECT plan FROM plans WHERE run = ?", arguments: [run]) }
        }
    }

    public func savePlan(run: String, _ plan: Data) throws(SiloLedgerError) {
        try wrap("record the plan of run \(run)") {
            try db.write { db in try db.execute(sql: "INSERT OR IGNORE INTO plans (run, plan) VALUES (?, ?)", arguments: [run, plan]) }
        }
    }

    private func wrap<T>(_ what: String, _ body: () throws -> T) throws(SiloLedgerError) -> T {
        do { return try body() } catch let error as SiloLedgerError { throw error } catch {
            throw SiloLedgerError("cannot \(what) in \(path): \(error)")
        }
    }
}

/// A fault of the silo's ledger file, naming it.
public struct SiloLedgerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
