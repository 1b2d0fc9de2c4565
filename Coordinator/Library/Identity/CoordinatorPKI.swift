public import ConclaveIdentity
import Crypto
import Foundation
import NIOCertificateReloading
import NIOSSL
import Synchronization
import SwiftASN1
import X509

/// The coordinator's PKI, loaded from the directory `conclave ca init` made: the federation CA (which issues
/// certificates at enrolment and renewal), its own server certificate (renewed by itself after two-thirds
/// of its lifetime, with a fresh key, swapped in for the next handshake without a restart) and the trust
/// store.
public final class CoordinatorPKI: Sendable {
    public let ca: FederationCA
    let trust: TrustStore
    let server: ServerCertificate
    let directory: String
    let hosts: [String]

    public static func files(in dir: String) -> (caCert: String, caKey: String, cert: String, key: String) {
        (dir + "/ca.pem", dir + "/ca.key", dir + "/coordinator.pem", dir + "/coordinator.key")
    }

    public init(directory: String, revokedSerials: Set<String>, revokedIdentities: Set<String>) throws(IdentityError) {
        let f = Self.files(in: directory)
        try KeyPairFiles.repair(certificatePath: f.cert, keyPath: f.key)  // a renewal a crash interrupted
        func read(_ path: String) throws(IdentityError) -> String {
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw IdentityError("cannot read \(path): \(error.localizedDescription) (make the CA with 'conclave ca init --dir \(directory)')")
            }
        }
        ca = try FederationCA(certificatePEM: try read(f.caCert), keyPEM: try read(f.caKey))
        let certificate: Certificate
        let key: P256.Signing.PrivateKey
        do {
            certificate = try Certificate(pemEncoded: try read(f.cert))
            key = try P256.Signing.PrivateKey(pemRepresentation: try read(f.key))
        } catch let error as IdentityError { throw error } catch {
            throw IdentityError("cannot read the coordinator's certificate in \(directory): \(error)")
        }
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw IdentityError("\(f.key) does not belong to \(f.cert)")
        }
        hosts = (try? certificate.extensions.subjectAlternativeNames).map { sans in
            sans.compactMap { name -> String? in
                switch name {
                case .dnsName(let host): host
                case .ipAddress(let bytes): bytes.bytes.map(String.init).joined(separator: ".")
                default: nil
                }
            }
        } ?? []
        self.directory = directory
        server = try ServerCertificate(certificate: certificate, key: key)
        trust = TrustStore(ca: ca.certificate, federation: ca.federation, revokedSerials: revokedSerials,
                           revokedIdentities: revokedIdentities)
    }

    public var caPEM: String { (try? ca.certificate.serializeAsPEM().pemString) ?? "" }

    /// Renews the server certificate once two-thirds of its lifetime have passed: fresh key, same identity
    /// and hosts, files replaced (key first), served from the next handshake. Returns the new serial.
    func renewServerIfDue(lifetime: TimeInterval, now: Date = Date()) throws(IdentityError) -> String? {
        guard IdentityDirectory.renewalDue(server.current, now: now) else { return nil }
        let key = P256.Signing.PrivateKey()
        let certificate = try ca.issue(publicKey: Certificate.PublicKey(key.publicKey),
                                       for: PeerIdentity(federation: ca.federation, role: .coordinator, name: "coordinator"),
                                       lifetime: lifetime, hosts: hosts, now: now)
        let f = Self.files(in: directory)
        let pem: String
        do { pem = try certificate.serializeAsPEM().pemString } catch { throw IdentityError("cannot encode the certificate: \(error)") }
        try KeyPairFiles.replace(certificatePath: f.cert, certificatePEM: pem, keyPath: f.key, keyPEM: key.pemRepresentation)
        try server.swap(certificate: certificate, key: key)
        return certificate.serialHex
    }
}

/// The coordinator's own certificate and key as NIOSSL reads them on every handshake.
final class ServerCertificate: CertificateReloader, Sendable {
    private struct Current: Sendable {
        var certificate: Certificate
        var override: NIOSSLContextConfigurationOverride
    }
    private let state: Mutex<Current>

    init(certificate: Certificate, key: P256.Signing.PrivateKey) throws(IdentityError) {
        state = Mutex(Current(certificate: certificate, override: try Self.override(certificate, key)))
    }

    var current: Certificate { state.withLock { $0.certificate } }

    var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride { state.withLock { $0.override } }

    func swap(certificate: Certificate, key: P256.Signing.PrivateKey) throws(IdentityError) {
        let override = try Self.override(certificate, key)
        state.withLock { $0 = Current(certificate: certificate, override: override) }
    }

    private static func override(_ certificate: Certificate, _ key: P256.Signing.PrivateKey) throws(IdentityError) -> NIOSSLContextConfigurationOverride {
        do {
            var o = NIOSSLContextConfigurationOverride()
            o.certificateChain = [.certificate(try NIOSSLCertificate(bytes: try certificate.derBytes, format: .der))]
            o.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
            return o
        } catch {
            throw IdentityError("cannot load the coordinator's certificate into TLS: \(error)")
        }
    }
}
