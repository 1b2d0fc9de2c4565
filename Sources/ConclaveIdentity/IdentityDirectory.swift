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

    /// Writes a new certificate and key (the key first, mode 0600; each file replaced atomically).
    public func store(certificate: Certificate, key: P256.Signing.PrivateKey, caPEM: String) throws(IdentityError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            try Self.writePrivate(key.pemRepresentation, to: keyPath)
            try Data(certificate.serializeAsPEM().pemString.utf8).write(to: URL(fileURLWithPath: certificatePath), options: .atomic)
            try Data(caPEM.utf8).write(to: URL(fileURLWithPath: caPath), options: .atomic)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError("cannot write the identity in \(path): \(error)")
        }
    }

    /// A secret file: created 0600 before any byte is written, then renamed into place.
    public static func writePrivate(_ text: String, to path: String) throws(IdentityError) {
        let temp = path + ".tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw IdentityError("cannot create \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temp, path) == 0 else {
            unlink(temp)
            throw IdentityError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
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
