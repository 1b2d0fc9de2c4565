public import ConclaveCrypto
public import ConclaveFederation
import Foundation

/// A long-term Ed25519 key — a silo's identity key, a person's ledger signing key — in a file holding its 32-byte
/// seed in hex, readable only by its owner (0600). Created on first use; enrolment binds its public key to the
/// identity.
public enum IdentityKeyFile {
    public static func loadOrCreate(path: String) throws(FederationError) -> (key: Ed25519KeyPair, created: Bool) {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw FederationError(.failedPrecondition, "cannot read identity key file \(path)")
            }
            let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let seed = bytes(hex: hex), seed.count == 32 else {
                throw FederationError(.failedPrecondition,
                    "identity key file \(path) must hold 64 hex digits (a 32-byte Ed25519 seed); it is malformed")
            }
            do { return (try Ed25519KeyPair(seed: seed), false) } catch {
                throw FederationError(.failedPrecondition, "identity key file \(path): \(error.message)")
            }
        }
        let key = Ed25519KeyPair()
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            // Written to a private temporary file and renamed, so a crash never leaves half a key.
            let temporary = path + ".tmp-\(getpid())"
            guard fm.createFile(atPath: temporary, contents: Data((key.seed.hexString + "\n").utf8),
                                attributes: [.posixPermissions: 0o600]) else {
                throw FederationError(.failedPrecondition, "cannot write identity key file \(path)")
            }
            try fm.moveItem(atPath: temporary, toPath: path)
        } catch let error as FederationError {
            throw error
        } catch {
            throw FederationError(.failedPrecondition, "cannot write identity key file \(path): \(error.localizedDescription)")
        }
        return (key, true)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
