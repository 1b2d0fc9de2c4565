import CSodium

/// A deterministic random bit generator: the ChaCha20 keystream under a 32-byte seed, drawn in 4 KiB blocks.
/// Seeded from libsodium's CSPRNG by default; with an explicit seed it replays exactly (tests, share checks).
public struct ChaChaDRBG: RandomNumberGenerator, Sendable {
    private let key: [UInt8]
    private var block: UInt64 = 0
    private var buffer = [UInt64](repeating: 0, count: 512)
    private var index = 512

    public init(seed: [UInt8] = SecureRandom.bytes(32)) {
        precondition(seed.count == 32, "a ChaCha20 DRBG seed is 32 bytes")
        Sodium.ensureReady()
        key = seed
    }

    public mutating func next() -> UInt64 {
        if index == buffer.count { refill() }
        defer { index += 1 }
        return buffer[index]
    }

    private mutating func refill() {
        // Each 4 KiB block uses its own nonce (the block number), so the keystream never repeats.
        var nonce = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: block.littleEndian) { nonce.replaceSubrange(0..<8, with: $0) }
        buffer.withUnsafeMutableBytes { out in
            _ = crypto_stream_chacha20_ietf(out.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(out.count),
                                            nonce, key)
        }
        block += 1
        index = 0
    }
}
