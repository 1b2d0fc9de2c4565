import CSodium

/// BLAKE2b (libsodium's generichash), for deriving keys from a shared secret and its context.
public enum BLAKE2b {
    /// A `length`-byte digest (16…64) of the concatenated `parts`, optionally keyed.
    public static func hash(_ parts: [[UInt8]], length: Int = 32, key: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard (Int(crypto_generichash_BYTES_MIN)...Int(crypto_generichash_BYTES_MAX)).contains(length) else {
            throw CryptoError("BLAKE2b output length must be 16…64 bytes, got \(length)")
        }
        Sodium.ensureReady()
        let input = Array(parts.joined())
        var out = [UInt8](repeating: 0, count: length)
        crypto_generichash(&out, length, input, UInt64(input.count), key.isEmpty ? nil : key, key.count)
        return out
    }

    /// Key derivation for a pairwise mask: BLAKE2b over the shared secret, both public keys (in a fixed order,
    /// so both sides agree) and the round id. Each part is length-prefixed so no two inputs collide.
    public static func deriveKey(sharedSecret: SecretBytes, publicKeyA: [UInt8], publicKeyB: [UInt8], context: [UInt8],
                                 length: Int = 32) throws(CryptoError) -> [UInt8] {
        let (low, high) = publicKeyA.lexicographicallyPrecedes(publicKeyB) ? (publicKeyA, publicKeyB) : (publicKeyB, publicKeyA)
        let parts = [sharedSecret.bytes, low, high, context]
        let framed = parts.map { [UInt8(truncatingIfNeeded: $0.count >> 8), UInt8(truncatingIfNeeded: $0.count)] + $0 }
        return try hash(framed, length: length)
    }
}
