public import ConclavePrivacy
import ConclaveFederation
import Foundation
import GRDB

/// The privacy ledger in the coordinator's SQLite: entries appended in order (their canonical bytes, exactly as
/// hashed and signed), co-signatures added beside them, signed checkpoints. Nothing is ever updated or
/// deleted (triggers refuse it). `PrivacyLedger(replaying:)` and `LedgerVerifier` read it back.
extension CoordinatorStore {
    /// Appends entries that continue the stored ledger (sequence and previous-entry hash are checked), in one
    /// transaction: all of them or none.
    public func appendLedger(_ entries: [SignedEntry]) throws(StorageError) {
        try wrapLedger("append to the privacy ledger") {
            try db.write { db in try Self.appendLedger(entries, db) }
        }
    }

    static func appendLedger(_ entries: [SignedEntry], _ db: Database) throws {
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ledger_entries") ?? 0
        var previous = try Data.fetchOne(db, sql: "SELECT entry FROM ledger_entries ORDER BY seq DESC LIMIT 1")
            .map { try Self.decodeEntry($0).hashHex } ?? ""
        for (i, signed) in entries.enumerated() {
            guard signed.entry.seq == count + i, signed.entry.previous == previous else {
                throw StorageError.conflict("ledger entry \(signed.entry.seq) does not continue the stored ledger of \(count + i) entries")
            }
            try db.execute(sql: "INSERT INTO ledger_entries (seq, entry, signatures) VALUES (?, ?, ?)",
                           arguments: [signed.entry.seq, Data(signed.entry.canonicalBytes), try JSONEncoder().encode(signed.signatures)])
            previous = signed.entry.hashHex
        }
    }

    public func addLedgerCosignature(seq: Int, signer: String, signature: [UInt8]) throws(StorageError) {
        try wrapLedger("co-sign ledger entry \(seq)") {
            try db.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO ledger_cosignatures (seq, signer, signature) VALUES (?, ?, ?)",
                               arguments: [seq, signer, Data(signature)])
            }
        }
    }

    public func appendLedgerCheckpoint(_ checkpoint: LedgerCheckpoint) throws(StorageError) {
        try wrapLedger("store a ledger checkpoint") {
            try db.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO ledger_checkpoints (size, checkpoint) VALUES (?, ?)",
                               arguments: [checkpoint.size, try JSONEncoder().encode(checkpoint)])
            }
        }
    }

    /// Every entry with its own and its co-signatures, in order.
    public func ledgerEntries() throws(StorageError) -> [SignedEntry] {
        try wrapLedger("read the privacy ledger") {
            try db.read { db in
                var cosignatures = [Int: [String: [UInt8]]]()
                for row in try Row.fetchAll(db, sql: "SELECT seq, signer, signature FROM ledger_cosignatures") {
                    cosignatures[row["seq"], default: [:]][row["signer"]] = Array(row["signature"] as Data)
                }
                return try Row.fetchAll(db, sql: "SELECT seq, entry, signatures FROM ledger_entries ORDER BY seq").map { row in
                    let entry = try Self.decodeEntry(row["entry"])
                    var signatures = try JSONDecoder().decode([String: [UInt8]].self, from: row["signatures"] as Data)
                    signatures.merge(cosignatures[row["seq"]] ?? [:]) { own, _ in own }
                    return SignedEntry(entry: entry, signatures: signatures)
                }
            }
        }
    }

    /// A silo's co-signature on a stored checkpoint (after it checked the checkpoint extends its last one).
    public func addCheckpointCosignature(size: Int, signer: String, signature: [UInt8]) throws(StorageError) {
        try wrapLedger("co-sign the checkpoint of size \(size)") {
            try db.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO ledger_checkpoint_cosignatures (size, signer, signature) VALUES (?, ?, ?)",
                               arguments: [size, signer, Data(signature)])
            }
        }
    }

    /// Every checkpoint with the coordinator's signature and the silos' co-signatures, smallest first.
    public func ledgerCheckpoints() throws(StorageError) -> [LedgerCheckpoint] {
        try wrapLedger("read ledger checkpoints") {
            try db.read { db in
                var cosignatures = [Int: [String: [UInt8]]]()
                for row in try Row.fetchAll(db, sql: "SELECT size, signer, signature FROM ledger_checkpoint_cosignatures") {
                    cosignatures[row["size"], default: [:]][row["signer"]] = Array(row["signature"] as Data)
                }
                return try Row.fetchAll(db, sql: "SELECT size, checkpoint FROM ledger_checkpoints ORDER BY size").map { row in
                    var checkpoint = try JSONDecoder().decode(LedgerCheckpoint.self, from: row["checkpoint"] as Data)
                    checkpoint.signatures.merge(cosignatures[row["size"]] ?? [:]) { own, _ in own }
                    return checkpoint
                }
            }
        }
    }

    /// The checkpoint of one size, with its co-signatures (nil if none was made at that size).
    public func ledgerCheckpoint(size: Int) throws(StorageError) -> LedgerCheckpoint? {
        try wrapLedger("read the checkpoint of size \(size)") {
            try db.read { db in
                guard let data = try Data.fetchOne(db, sql: "SELECT checkpoint FROM ledger_checkpoints WHERE size = ?", arguments: [size]) else { return nil }
                var checkpoint = try JSONDecoder().decode(LedgerCheckpoint.self, from: data)
                for row in try Row.fetchAll(db, sql: "SELECT signer, signature FROM ledger_checkpoint_cosignatures WHERE size = ?", arguments: [size]) {
                    if checkpoint.signatures[row["signer"]] == nil { checkpoint.signatures[row["signer"]] = Array(row["signature"] as Data) }
                }
                return checkpoint
            }
        }
    }

    /// Every silo's enrolled (or first-used) Ed25519 identity key: what checks its co-signatures.
    public func siloIdentityKeys() throws(StorageError) -> [String: [UInt8]] {
        try wrapLedger("read the silos' keys") {
            try db.read { db in
                var keys = [String: [UInt8]]()
                for row in try Row.fetchAll(db, sql: "SELECT id, identity_key FROM silos WHERE identity_key IS NOT NULL") {
                    keys[row["id"]] = Array(row["identity_key"] as Data)
                }
                return keys
            }
        }
    }

    static func decodeEntry(_ bytes: Data) throws -> LedgerEntry {
        let entry = try JSONDecoder().decode(LedgerEntry.self, from: bytes)
        // The stored bytes are what was signed: a re-encoding that differs means the row was not written by us.
        guard entry.canonicalBytes == Array(bytes) else {
            throw StorageError("ledger entry \(entry.seq) is not in canonical form: it was not written by Conclave")
        }
        return entry
    }

    private func wrapLedger<T>(_ what: String, _ body: () throws -> T) throws(StorageError) -> T {
        do { return try body() } catch let error as StorageError { throw error } catch {
            throw StorageError("cannot \(what): \(error)")
        }
    }
}

extension CoordinatorStore {
    public struct KnownSilo: Sendable, Equatable {
        public var id: String
        public var dataset: String
        public var examples: UInt64

        public init(id: String, dataset: String, examples: UInt64) {
            self.id = id
            self.dataset = dataset
            self.examples = examples
        }
    }

    /// Every silo that described itself to the coordinator, with its dataset and record count.
    public func knownSilos() throws(StorageError) -> [KnownSilo] {
        do {
            return try db.read { db in
                try Row.fetchAll(db, sql: "SELECT id, dataset, num_examples FROM silos ORDER BY id").map {
                    KnownSilo(id: $0["id"], dataset: $0["dataset"], examples: UInt64(max(0, $0["num_examples"] as Int64)))
                }
            }
        } catch { throw StorageError("cannot read the silos: \(error)") }
    }
}

extension CoordinatorStore {
    /// Every committed round of every run (and every round an operator discarded), for the ledger export.
    public func committedRounds() throws(StorageError) -> [CommittedRound] {
        var out = [CommittedRound]()
        for run in try runs() {
            let unit = run.spec.privacy.map { PrivacyRelease.unit(for: $0.mode) }
            for r in try rounds(run: run.id) {
                out.append(CommittedRound(run: run.id, round: r.round, modelSHA256: r.checkpointSHA256, unit: unit,
                                          silos: r.silos.sorted(), committedAt: r.finishedAt, discarded: false))
            }
            do {
                try db.read { db in
                    for row in try Row.fetchAll(db, sql: "SELECT round, checkpoint_sha256, at FROM discarded_rounds WHERE run_id = ?", arguments: [run.id]) {
                        out.append(CommittedRound(run: run.id, round: row["round"], modelSHA256: row["checkpoint_sha256"], unit: unit,
                                                  silos: [], committedAt: row["at"], discarded: true))
                    }
                }
            } catch { throw StorageError("cannot read discarded rounds: \(error)") }
        }
        return out
    }
}
