import ConclaveCrypto

/// Random words for noise, fast enough for DP-SGD's every step: the AES-128-CTR keystream (OpenSSL, AES-NI)
/// under a fresh 16-byte key from libsodium's CSPRNG, read in 32 KiB blocks. Never seeded by a caller: noise
/// must not be replayable.
public struct NoiseRandom: RandomNumberGenerator {
    private let cursor: KeystreamCursor
    private var buffer = [UInt64](repeating: 0, count: 4096)
    private var index = 4096

    public init() {
        do {
            cursor = try KeystreamCursor(try AESCTRKeystream(key: SecureRandom.bytes(16)), byteOffset: 0)
        } catch {
            preconditionFailure("AES-128-CTR is unavailable in libcrypto: \(error.message)")
        }
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        if index == buffer.count { refill() }
        defer { index += 1 }
        return buffer.withUnsafeBufferPointer { $0[index] }
    }

    /// Writes fresh keystream words straight into `words` (a multiple of 8 words), for callers that consume
    /// random words in bulk: no per-word call, no copy.
    public mutating func fill(_ words: UnsafeMutableBufferPointer<UInt64>) {
        precondition(words.count % 8 == 0, "keystream blocks are 64 bytes")
        do {
            try cursor.next(UnsafeMutableRawBufferPointer(words))
        } catch {
            preconditionFailure("AES-128-CTR keystream failed: \(error)")
        }
    }

    private mutating func refill() {
        do {
            try buffer.withUnsafeMutableBytes { try cursor.next($0) }
        } catch {
            preconditionFailure("AES-128-CTR keystream failed: \(error)")
        }
        index = 0
    }
}
