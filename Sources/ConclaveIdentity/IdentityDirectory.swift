public import Crypto
public import Foundation
import SwiftASN1
public import X509

/// An identity on disk: `cert.pem` (this party's certificate), `key.pem` (its P-256 key, mode 0600, never
/// leaves the machine) and `ca.pem` (the federation CA it trusts). The CLI finds one through `--identity DIR`
/// or `$CONCLAVE_IDENTITY`; agents keep theirs beside their config.
public struct IdentityDirectory: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    public var certificatePath: String { path + "/cert.pem" }
    public var keyPath: String { path + "/key.pem" }
    public var caPath: String { path + "/ca.pem" }

    public var exists: Bool { FileManager.default.fileExists(atPath: certificatePath) }

    /// The certificate on disk.
    public func certificate() throws(IdentityError) -> Certificate {
        do { return try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8)) } catch {
            throw IdentityError("cannot read the certificate \(certificatePath): \(error)")
        }
    }

    /// The CA certificate (PEM text) this identity trusts.
    public func caPEM() throws(IdentityError) -> String {
        do { return try String(contentsOfFile: caPath, encoding: .utf8) } catch {
            throw IdentityError("cannot read the CA certificate \(caPath): \(error)")
        }
    }

    public func identity() throws(IdentityError) -> PeerIdentity {
        let certificate = try certificate()
        guard let identity = PeerIdentity(certificate: certificate) else {
            throw IdentityError("\(certificatePath) carries no Conclave identity (spiffe://… SAN URI)")
        }
        return identity
    }

    /// Writes a new certificate and key as a pair (`KeyPairFiles`: a crash never leaves them mismatched), and
    /// the CA certificate.
    public func store(certificate: Certificate, key: P256.Signing.PrivateKey, caPEM: String) throws(IdentityError) {
        let certificatePEM: String
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            certificatePEM = try certificate.serializeAsPEM().pemString
        } catch {
            throw IdentityError("cannot write the identity in \(path): \(error)")
        }
        try KeyPairFiles.write(caPEM, to: caPath, mode: 0o644)
        try KeyPairFiles.replace(certificatePath: certificatePath, certificatePEM: certificatePEM, keyPath: keyPath,
                                 keyPEM: key.pemRepresentation)
    }

    /// Completes a certificate replacement a crash interrupted (call before using the files).
    public func repair() throws(IdentityError) {
        try KeyPairFiles.repair(certificatePath: certificatePath, keyPath: keyPath)
    }

    /// A secret file: created 0600 before any byte is written, fsynced, then renamed into place.
    public static func writePrivate(_ text: String, to path: String) throws(IdentityError) {
        try KeyPairFiles.write(text, to: path, mode: 0o600)
    }

    /// True once two-thirds of the certificate's lifetime have passed: time to renew with a fresh key.
    public func needsRenewal(now: Date = Date()) -> Bool {
        guard let certificate = try? certificate() else { return false }
        return Self.renewalDue(certificate, now: now)
    }

    public static func renewalDue(_ certificate: Certificate, now: Date) -> Bool {
        let start = certificate.notValidBefore, end = certificate.notValidAfter
        return now >= start + (end.timeIntervalSince(start) * 2 / 3)
    }
}
