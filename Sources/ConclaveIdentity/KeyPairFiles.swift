#if canImport(Glibc)
import Glibc
#endif

/// A certificate and its key on disk, replaced as a pair so a crash never leaves a key beside a certificate it
/// does not belong to (a silo could then neither connect nor renew; a coordinator would not start). Both new
/// files are written durably as `.next` (certificate first), then renamed certificate first, key second. Every
/// state a crash can leave is told apart by `repair`: a lone `cert.next` is an unfinished write (dropped), a
/// lone `key.next` means the certificate already moved (the key follows), both mean nothing moved yet (both do).
public enum KeyPairFiles {
    public static func replace(certificatePath: String, certificatePEM: String, keyPath: String, keyPEM: String) throws(IdentityError) {
        try write(certificatePEM, to: certificatePath + ".next", mode: 0o644)
        try write(keyPEM, to: keyPath + ".next", mode: 0o600)
        try repair(certificatePath: certificatePath, keyPath: keyPath)
    }

    /// Completes or discards a replacement a crash interrupted; does nothing when none is pending.
    public static func repair(certificatePath: String, keyPath: String) throws(IdentityError) {
        let certNext = certificatePath + ".next", keyNext = keyPath + ".next"
        let hasCert = access(certNext, F_OK) == 0, hasKey = access(keyNext, F_OK) == 0
        if hasCert && !hasKey {
            unlink(certNext)  // the key never reached the disk: the old pair stands
            return
        }
        if hasCert { try move(certNext, certificatePath) }
        if hasKey { try move(keyNext, keyPath) }
    }

    static func move(_ from: String, _ to: String) throws(IdentityError) {
        guard rename(from, to) == 0 else { throw IdentityError("cannot replace \(to): \(String(cString: strerror(errno)))") }
        syncDirectory(of: to)
    }

    /// Writes through a temporary file (created with `mode` before any byte), fsynced, renamed into place.
    static func write(_ text: String, to path: String, mode: mode_t) throws(IdentityError) {
        let temp = path + ".tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw IdentityError("cannot create \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temp, path) == 0 else {
            unlink(temp)
            throw IdentityError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) {
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
