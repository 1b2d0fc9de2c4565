public import Crypto
public import Foundation
import SwiftASN1
public import X509

/// What `conclave ca init` (and the demo) lays out: the CA and its key (0600), the coordinator's certificate
/// and key, and the first operator's identity directory under `operators/NAME`.
public enum FederationSetup {
    public static func create(federation: String, dir: String, hosts: [String], operator name: String,
                              days: Double) throws -> (ca: FederationCA, operatorDirectory: IdentityDirectory, operatorIdentity: PeerIdentity) {
        let files = (ca: dir + "/ca.pem", caKey: dir + "/ca.key", cert: dir + "/coordinator.pem", key: dir + "/coordinator.key")
        guard !FileManager.default.fileExists(atPath: files.caKey) else {
            throw IdentityError("\(files.caKey) exists: this directory already holds a federation CA (remove it only if you mean to replace every identity)")
        }
        let ca = try FederationCA.create(federation: federation)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try IdentityDirectory.writePrivate(ca.keyPEM, to: files.caKey)
        let caPEM = try ca.certificate.serializeAsPEM().pemString
        try Data(caPEM.utf8).write(to: URL(fileURLWithPath: files.ca), options: .atomic)

        let serverKey = P256.Signing.PrivateKey()
        let server = try ca.issue(publicKey: Certificate.PublicKey(serverKey.publicKey),
                                  for: PeerIdentity(federation: federation, role: .coordinator, name: "coordinator"),
                                  lifetime: days * 86_400, hosts: hosts)
        try IdentityDirectory.writePrivate(serverKey.pemRepresentation, to: files.key)
        try Data(server.serializeAsPEM().pemString.utf8).write(to: URL(fileURLWithPath: files.cert), options: .atomic)

        let operatorKey = P256.Signing.PrivateKey()
        let identity = PeerIdentity(federation: federation, role: .operator, name: name)
        let certificate = try ca.issue(publicKey: Certificate.PublicKey(operatorKey.publicKey), for: identity, lifetime: days * 86_400)
        let operatorDir = IdentityDirectory(path: dir + "/operators/" + name)
        try operatorDir.store(certificate: certificate, key: operatorKey, caPEM: caPEM)
        return (ca, operatorDir, identity)
    }
}

extension FederationCA {
    /// Issues a certificate for `identity` to a fresh key and stores both in `directory` (tests, benchmarks).
    public func issueIdentity(_ identity: PeerIdentity, lifetime: TimeInterval, into directory: IdentityDirectory) throws {
        let key = P256.Signing.PrivateKey()
        let certificate = try issue(publicKey: Certificate.PublicKey(key.publicKey), for: identity, lifetime: lifetime)
        try directory.store(certificate: certificate, key: key, caPEM: try self.certificate.serializeAsPEM().pemString)
    }
}
