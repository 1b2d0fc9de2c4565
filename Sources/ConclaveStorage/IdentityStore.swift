import ConclaveCrypto
import Foundation
import GRDB

/// The federation's identities: who may enrol (tokens, kept only as SHA-256), what the CA issued, and what
/// was revoked. Every change is one transaction, so a refused or failed enrolment leaves nothing behind.
extension CoordinatorStore {
    public struct IdentityRecord: Sendable, Equatable {
        public var role: String
        public var name: String
        public var state: String
        public var dataset: String
        public var lastContact: Double?
        public var serial: String?
        public var notAfter: Double?
        /// The Ed25519 key proved at enrolment, if any.
        public var signingKey: [UInt8]?
    }

    public struct IssuedCertificate: Sendable {
        public var serial: String
        public var notBefore: Double
        public var notAfter: Double
        public init(serial: String, notBefore: Double, notAfter: Double) {
            self.serial = serial
            self.notBefore = notBefore
            self.notAfter = notAfter
        }
    }

    /// A new one-time token for an identity (created pending, or kept as it is when enrolled again after
    /// expiry of the previous token). Refused for a revoked or active identity.
    public func addEnrolmentToken(role: String, name: String, dataset: String, tokenSHA256: [UInt8], expiresAt: Double,
                                  now: Double) throws(StorageError) {
        try wrapIdentity("add enrolment token for \(role) '\(name)'") {
            try db.write { db in
                if let state = try String.fetchOne(db, sql: "SELECT state FROM identities WHERE role = ? AND name = ?",
                                                   arguments: [role, name]) {
                    guard state == "pending" else {
                        throw StorageError.conflict("\(role) '\(name)' is \(state); "
                            + (state == "revoked" ? "a revoked identity cannot enrol again" : "revoke it first to enrol it anew"))
                    }
                    try db.execute(sql: "UPDATE identities SET dataset = ? WHERE role = ? AND name = ?", arguments: [dataset, role, name])
                } else {
                    try db.execute(sql: "INSERT INTO identities (role, name, state, dataset, created_at) VALUES (?, ?, 'pending', ?, ?)",
                                   arguments: [role, name, dataset, now])
                }
                try db.execute(sql: "INSERT INTO enrolment_tokens (token_sha256, role, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Data(tokenSHA256), role, name, now, expiresAt])
            }
        }
    }

    /// What an unused, unexpired token is for; nil otherwise (unknown, used or expired all look alike).
    public func enrolmentToken(sha256: [UInt8], now: Double) throws(StorageError) -> (role: String, name: String)? {
        try wrapIdentity("read enrolment token") {
            try db.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT role, name FROM enrolment_tokens WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?
                    """, arguments: [Data(sha256), now]).map { (role: $0["role"], name: $0["name"]) }
            }
        }
    }

    /// Enrolment's one transaction: the token is marked used (only if still unused and unexpired), the
    /// identity becomes active, the certificate is recorded and, for a silo, its Ed25519 key is bound.
    /// Returns false (and changes nothing) when the token was used meanwhile.
    public func completeEnrolment(tokenSHA256: [UInt8], role: String, name: String, certificate: IssuedCertificate,
                                  identityKey: [UInt8]?, dataset: String, now: Double) throws(StorageError) -> Bool {
        try wrapIdentity("enrol \(role) '\(name)'") {
            try db.write { db in
                try db.execute(sql: """
                    UPDATE enrolment_tokens SET used_at = ? WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?
                    """, arguments: [now, Data(tokenSHA256), now])
                guard db.changesCount == 1 else { return false }
                let state = try String.fetchOne(db, sql: "SELECT state FROM identities WHERE role = ? AND name = ?",
                                                arguments: [role, name])
                guard state == "pending" else {
                    throw StorageError.conflict("\(role) '\(name)' is \(state ?? "unknown"); it cannot enrol")
                }
                try db.execute(sql: "UPDATE identities SET state = 'active', signing_key = ? WHERE role = ? AND name = ?",
                               arguments: [identityKey.map { Data($0) }, role, name])
                try insertCertificate(db, role: role, name: name, certificate, now: now)
                if let identityKey, role == "silo" {
                    try db.execute(sql: """
                        INSERT INTO silos (id, dataset, num_examples, first_seen, last_seen, identity_key) VALUES (?, ?, 0, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET identity_key = excluded.identity_key
                        """, arguments: [name, dataset, now, now, Data(identityKey)])
                }
                return true
            }
        }
    }

    /// A certificate issued outside enrolment (`conclave ca init`'s first operator): recorded once, so the
    /// identity is listed and can be revoked like any other. A revoked identity stays revoked.
    public func recordIssued(role: String, name: String, certificate: IssuedCertificate, now: Double) throws(StorageError) {
        try wrapIdentity("record \(role) '\(name)'") {
            try db.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO identities (role, name, state, created_at) VALUES (?, ?, 'active', ?)",
                               arguments: [role, name, now])
                try db.execute(sql: """
                    INSERT OR IGNORE INTO certificates (serial, role, name, not_before, not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [certificate.serial, role, name, certificate.notBefore, certificate.notAfter, now])
            }
        }
    }

    /// A renewal: one more certificate for an active identity.
    public func recordRenewal(role: String, name: String, certificate: IssuedCertificate, now: Double) throws(StorageError) {
        try wrapIdentity("record renewal of \(role) '\(name)'") {
            try db.write { db in
                let state = try String.fetchOne(db, sql: "SELECT state FROM identities WHERE role = ? AND name = ?",
                                                arguments: [role, name])
                guard state == "active" else { throw StorageError.conflict("\(role) '\(name)' is \(state ?? "unknown"); it cannot renew") }
                try insertCertificate(db, role: role, name: name, certificate, now: now)
            }
        }
    }

    private func insertCertificate(_ db: Database, role: String, name: String, _ c: IssuedCertificate, now: Double) throws {
        try db.execute(sql: """
            INSERT INTO certificates (serial, role, name, not_before, not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [c.serial, role, name, c.notBefore, c.notAfter, now])
    }

    /// Revokes an identity and all its certificates; returns the serials revoked (nil: no such identity).
    public func revokeIdentity(role: String, name: String, now: Double) throws(StorageError) -> [String]? {
        try wrapIdentity("revoke \(role) '\(name)'") {
            try db.write { db in
                guard try String.fetchOne(db, sql: "SELECT state FROM identities WHERE role = ? AND name = ?",
                                          arguments: [role, name]) != nil else { return nil }
                try db.execute(sql: "UPDATE identities SET state = 'revoked', revoked_at = COALESCE(revoked_at, ?) WHERE role = ? AND name = ?",
                               arguments: [now, role, name])
                try db.execute(sql: "UPDATE enrolment_tokens SET used_at = COALESCE(used_at, ?) WHERE role = ? AND name = ?",
                               arguments: [now, role, name])
                let serials = try String.fetchAll(db, sql: "SELECT serial FROM certificates WHERE role = ? AND name = ? AND revoked_at IS NULL",
                                                  arguments: [role, name])
                try db.execute(sql: "UPDATE certificates SET revoked_at = ? WHERE role = ? AND name = ? AND revoked_at IS NULL",
                               arguments: [now, role, name])
                return serials
            }
        }
    }

    /// What the trust store refuses: revoked serials and revoked identities ("role/name").
    public func revocations() throws(StorageError) -> (serials: Set<String>, identities: Set<String>) {
        try wrapIdentity("read revocations") {
            try db.read { db in
                let serials = try String.fetchAll(db, sql: "SELECT serial FROM certificates WHERE revoked_at IS NOT NULL")
                let names = try Row.fetchAll(db, sql: "SELECT role, name FROM identities WHERE state = 'revoked'")
                    .map { "\($0["role"] as String)/\($0["name"] as String)" }
                return (Set(serials), Set(names))
            }
        }
    }

    public func identityState(role: String, name: String) throws(StorageError) -> String? {
        try wrapIdentity("read \(role) '\(name)'") {
            try db.read { db in
                try String.fetchOne(db, sql: "SELECT state FROM identities WHERE role = ? AND name = ?", arguments: [role, name])
            }
        }
    }

    public func recordContact(role: String, name: String, at time: Double) throws(StorageError) {
        try wrapIdentity("record contact of \(role) '\(name)'") {
            try db.write { db in
                try db.execute(sql: "UPDATE identities SET last_contact = ? WHERE role = ? AND name = ?", arguments: [time, role, name])
            }
        }
    }

    /// Every identity (or one role's) with its newest certificate.
    public func identities(role: String?) throws(StorageError) -> [IdentityRecord] {
        try wrapIdentity("list identities") {
            try db.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT i.role, i.name, i.state, i.dataset, i.last_contact, i.signing_key,
                           (SELECT serial FROM certificates c WHERE c.role = i.role AND c.name = i.name ORDER BY issued_at DESC, rowid DESC LIMIT 1) AS serial,
                           (SELECT not_after FROM certificates c WHERE c.role = i.role AND c.name = i.name ORDER BY issued_at DESC, rowid DESC LIMIT 1) AS not_after
                    FROM identities i WHERE (? IS NULL OR i.role = ?) ORDER BY i.role, i.name
                    """, arguments: [role, role]).map {
                    IdentityRecord(role: $0["role"], name: $0["name"], state: $0["state"], dataset: $0["dataset"],
                                   lastContact: $0["last_contact"], serial: $0["serial"], notAfter: $0["not_after"],
                                   signingKey: ($0["signing_key"] as Data?).map(Array.init))
                }
            }
        }
    }

    private func wrapIdentity<T>(_ what: String, _ body: () throws -> T) throws(StorageError) -> T {
        do { return try body() } catch let error as StorageError { throw error } catch {
            throw StorageError("cannot \(what): \(error)")
        }
    }
}
