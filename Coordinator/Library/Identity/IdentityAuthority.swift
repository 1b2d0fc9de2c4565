import ConclaveCrypto
import ConclaveFederation
public import ConclaveIdentity
public import ConclaveStorage
import ConclaveWire
import Crypto
import Foundation
import GRPCCore
public import Logging
import SwiftProtobuf
import SwiftASN1
import Synchronization
import X509

/// The coordinator's side of identity: minting enrolment tokens, enrolling (CSR + token, and for silos the
/// Ed25519 key they sign with), renewing, revoking and listing. Every change is one database transaction made
/// before the reply, so a refused request changes nothing.
public final class IdentityAuthority: Sendable {
    public let pki: CoordinatorPKI
    let store: CoordinatorStore
    let certificateSeconds: Double
    let tokenSeconds: Double
    private let enrolment: Mutex<String>
    let connections: ConnectionRegistry
    let contacts: ContactLog
    let logger: Logger
    /// Told when a silo is revoked (the run driver stops selecting it).
    let siloRevoked: @Sendable (String) async -> Void

    public init(pki: CoordinatorPKI, store: CoordinatorStore, certificateSeconds: Double, tokenSeconds: Double,
                enrolmentAddress: String, logger: Logger, siloRevoked: @escaping @Sendable (String) async -> Void = { _ in }) {
        self.siloRevoked = siloRevoked
        self.pki = pki
        self.store = store
        self.certificateSeconds = certificateSeconds
        self.tokenSeconds = tokenSeconds
        self.enrolment = Mutex(enrolmentAddress)
        self.connections = ConnectionRegistry()
        self.contacts = ContactLog { identity, at in
            try? store.recordContact(role: identity.role.rawValue, name: identity.name, at: at)
        }
        self.logger = logger
    }

    /// Records the operators `conclave ca init` issued directly (`<pki>/operators/NAME/cert.pem`), so they are
    /// listed and revocable like enrolled identities.
    public func recordLocalOperators() {
        let root = pki.directory + "/operators"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            guard let certificate = try? IdentityDirectory(path: root + "/" + name).certificate(),
                  let id = PeerIdentity(certificate: certificate), id.role == .operator, id.federation == pki.ca.federation else { continue }
            do {
                try store.recordIssued(role: id.role.rawValue, name: id.name, certificate: record(certificate),
                                       now: Date().timeIntervalSince1970)
            } catch {
                logger.warning("cannot record the operator certificate", metadata: ["path": "\(root)/\(name)", "error": "\(error.message)"])
            }
        }
    }

    /// The enrolment listener's bound address (known once it listens; port 0 picks one).
    func setEnrolmentAddress(_ address: String) { enrolment.withLock { $0 = address } }

    /// The tick's sweep: connections whose certificate expired while open are closed.
    func closeExpiredConnections() {
        let closed = connections.closeExpired()
        if closed > 0 { logger.info("connections with expired certificates closed", metadata: ["count": "\(closed)"]) }
    }

    /// The tick's renewal check of the coordinator's own certificate (logged; a failure retries later).
    func renewServerCertificateIfDue(lifetime: Double) {
        do {
            if let serial = try pki.renewServerIfDue(lifetime: lifetime) {
                logger.notice("coordinator certificate renewed", metadata: ["serial": "\(serial)"])
            }
        } catch {
            logger.error("cannot renew the coordinator certificate; retrying", metadata: ["error": "\(error.message)"])
        }
    }

    static func tokenHash(_ token: String) -> [UInt8] { Array(Crypto.SHA256.hash(data: Array(token.utf8))) }

    func identity(role: String, name: String) throws(RPCError) -> PeerIdentity {
        guard let r = PeerIdentity.Role(rawValue: role), r != .coordinator else {
            throw RPCError(code: .invalidArgument, message: "role must be silo, operator or privacy-officer, got \(WireCheck.preview(role))")
        }
        guard PeerIdentity.isValidName(name) else {
            throw RPCError(code: .invalidArgument, message: "name \(WireCheck.preview(name)) must be 1–128 letters, digits, '-', '_' or '.'")
        }
        return PeerIdentity(federation: pki.ca.federation, role: r, name: name)
    }

    func addIdentity(_ r: Conclave_V1_AddIdentityRequest) throws(RPCError) -> Conclave_V1_AddIdentityReply {
        let id = try identity(role: r.role, name: r.name)
        guard r.dataset.isEmpty || PeerIdentity.isValidName(r.dataset) else {
            throw RPCError(code: .invalidArgument, message: "dataset name \(WireCheck.preview(r.dataset)) must be 1–128 letters, digits, '-', '_' or '.'")
        }
        let seconds = r.tokenSeconds > 0 ? min(r.tokenSeconds, 30 * 86_400) : tokenSeconds
        let token = Self.base64url(SecureRandom.bytes(32))
        let now = Date().timeIntervalSince1970
        do {
            try store.addEnrolmentToken(role: id.role.rawValue, name: id.name, dataset: r.dataset, tokenSHA256: Self.tokenHash(token),
                                        expiresAt: now + seconds, now: now)
        } catch {
            throw RPCError(code: error.isConflict ? .alreadyExists : .unavailable, message: error.message)
        }
        logger.notice("enrolment token minted", metadata: ["identity": "\(id)", "expires_in_s": "\(Int(seconds))"])
        return .with {
            $0.token = token
            $0.tokenExpiresAt = now + seconds
            $0.identity = id.uri
            $0.enrolmentAddress = enrolment.withLock { $0 }
            $0.caPem = pki.caPEM
            $0.federation = pki.ca.federation
        }
    }

    /// Enrolment: token → identity; CSR checked; silos prove their Ed25519 key; one transaction.
    func enroll(_ r: Conclave_V1_EnrollRequest) throws(RPCError) -> Conclave_V1_EnrollReply {
        let now = Date()
        let hash = Self.tokenHash(r.token)
        let entry: (role: String, name: String)?
        do { entry = try store.enrolmentToken(sha256: hash, now: now.timeIntervalSince1970) } catch {
            throw RPCError(code: .unavailable, message: error.message)
        }
        guard let entry else {
            throw RPCError(code: .unauthenticated, message: "the enrolment token is unknown, already used or expired; ask the operator for a new bundle")
        }
        let id = try identity(role: entry.role, name: entry.name)
        let publicKey: Certificate.PublicKey
        do { publicKey = try FederationCA.checkedKey(csrDER: Array(r.csrDer), name: id.name) } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        // Silos prove their identity key, privacy officers the key they sign the ledger with; operators may.
        var identityKey: [UInt8]?
        if id.role == .silo || id.role == .privacyOfficer || !r.identityKey.isEmpty {
            let key = Array(r.identityKey)
            guard key.count == 32,
                  Ed25519.verify(signature: Array(r.identitySignature), message: EnrolmentBundle.proofStatement(csrDER: Array(r.csrDer)),
                                 publicKey: key) else {
                throw RPCError(code: .invalidArgument, message: "a \(id.role.rawValue) enrols with a 32-byte Ed25519 key (\(id.role == .silo ? "its identity key" : "its ledger signing key")) and that key's signature over the CSR; the proof does not verify")
            }
            identityKey = key
        }
        let certificate = try issue(publicKey, for: id, now: now)
        let done: Bool
        do {
            done = try store.completeEnrolment(tokenSHA256: hash, role: id.role.rawValue, name: id.name, certificate: record(certificate),
                                               identityKey: identityKey, dataset: "", now: now.timeIntervalSince1970)
        } catch {
            throw RPCError(code: error.isConflict ? .failedPrecondition : .unavailable, message: error.message)
        }
        guard done else { throw RPCError(code: .unauthenticated, message: "the enrolment token was used meanwhile") }
        logger.notice("enrolled", metadata: ["identity": "\(id)", "serial": "\(certificate.serialHex)",
                                            "identity_key": "\(identityKey.map { Array($0.prefix(8)).hexString } ?? "-")"])
        return try reply(certificate, id)
    }

    func renew(_ r: Conclave_V1_RenewRequest, caller: PeerIdentity) throws(RPCError) -> Conclave_V1_EnrollReply {
        let now = Date()
        let publicKey: Certificate.PublicKey
        do { publicKey = try FederationCA.checkedKey(csrDER: Array(r.csrDer), name: caller.name) } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        let certificate = try issue(publicKey, for: caller, now: now)
        do { try store.recordRenewal(role: caller.role.rawValue, name: caller.name, certificate: record(certificate), now: now.timeIntervalSince1970) } catch {
            throw RPCError(code: error.isConflict ? .failedPrecondition : .unavailable, message: error.message)
        }
        logger.info("certificate renewed", metadata: ["identity": "\(caller)", "serial": "\(certificate.serialHex)"])
        return try reply(certificate, caller)
    }

    /// Revocation: durable first, then the trust store (new handshakes and RPCs fail), then live connections.
    func revoke(_ r: Conclave_V1_RevokeIdentityRequest) throws(RPCError) -> Conclave_V1_RevokeIdentityReply {
        let id = try identity(role: r.role, name: r.name)
        let serials: [String]?
        do { serials = try store.revokeIdentity(role: id.role.rawValue, name: id.name, now: Date().timeIntervalSince1970) } catch {
            throw RPCError(code: .unavailable, message: error.message)
        }
        guard let serials else { throw RPCError(code: .notFound, message: "no \(id.role.rawValue) '\(id.name)' is known") }
        pki.trust.revoke(serials: serials, identity: id)
        let closed = connections.close(id)
        logger.notice("identity revoked", metadata: ["identity": "\(id)", "certificates": "\(serials.count)", "connections_closed": "\(closed)"])
        return .with {
            $0.certificatesRevoked = UInt32(serials.count)
            $0.connectionsClosed = UInt32(closed)
        }
    }

    func list(_ r: Conclave_V1_ListIdentitiesRequest) throws(RPCError) -> Conclave_V1_ListIdentitiesReply {
        let rows: [CoordinatorStore.IdentityRecord]
        do { rows = try store.identities(role: r.role.isEmpty ? nil : r.role) } catch {
            throw RPCError(code: .unavailable, message: error.message)
        }
        return .with {
            $0.identities = rows.map { row in
                .with {
                    $0.role = row.role
                    $0.name = row.name
                    $0.state = row.state
                    $0.serial = row.serial ?? ""
                    $0.notAfter = row.notAfter ?? 0
                    let id = PeerIdentity.Role(rawValue: row.role).map { PeerIdentity(federation: pki.ca.federation, role: $0, name: row.name) }
                    $0.lastContact = id.flatMap { contacts.lastContact($0) } ?? row.lastContact ?? 0
                    $0.dataset = row.dataset
                    $0.signingKeyFingerprint = row.signingKey.map { Array(Array(Crypto.SHA256.hash(data: $0)).prefix(8)).hexString } ?? ""
                }
            }
        }
    }

    private func issue(_ key: Certificate.PublicKey, for id: PeerIdentity, now: Date) throws(RPCError) -> Certificate {
        do { return try pki.ca.issue(publicKey: key, for: id, lifetime: certificateSeconds, now: now) } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
    }

    private func record(_ c: Certificate) -> CoordinatorStore.IssuedCertificate {
        .init(serial: c.serialHex, notBefore: c.notValidBefore.timeIntervalSince1970, notAfter: c.notValidAfter.timeIntervalSince1970)
    }

    private func reply(_ certificate: Certificate, _ id: PeerIdentity) throws(RPCError) -> Conclave_V1_EnrollReply {
        do {
            let der = try certificate.derBytes
            let ca = try pki.ca.certificate.derBytes
            return .with {
                $0.certificateDer = Data(der)
                $0.caCertificateDer = Data(ca)
                $0.identity = id.uri
                $0.notAfter = certificate.notValidAfter.timeIntervalSince1970
            }
        } catch {
            throw RPCError(code: .internalError, message: "cannot encode the certificate: \(error)")
        }
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
