public import ConclaveCrypto

/// Expands a mask key into `length` pseudo-random UInt32 values with a cryptographic PRG — AES-128-CTR
/// (libcrypto, AES-NI) by default, ChaCha20 (libsodium) as the portable fallback. Never a
/// non-cryptographic generator.
public enum MaskGenerator {
    public enum Kind: String, Sendable, CaseIterable {
        case aes
        case chacha
    }

    /// Adds (sign +1) or subtracts (−1) the mask expanded from `seed` into `vector`, modulo 2³².
    public static func apply(seed: [UInt8], kind: Kind, sign: Int32, to vector: inout [UInt32],
                             scratch: inout [UInt32]) throws(CryptoError) {
        if scratch.count != vector.count { scratch = [UInt32](repeating: 0, count: vector.count) }
        try expand(seed: seed, kind: kind, into: &scratch)
        vector.withUnsafeMutableBufferPointer { v in
            scratch.withUnsafeBufferPointer { m in
                if sign > 0 {
                    for i in 0..<m.count { v[i] &+= m[i] }
                } else {
                    for i in 0..<m.count { v[i] &-= m[i] }
                }
            }
        }
    }

    /// The mask itself. `seed` is 32 bytes; AES uses its first 16 as the key (the KDF output is uniform).
    public static func expand(seed: [UInt8], kind: Kind, into out: inout [UInt32]) throws(CryptoError) {
        guard seed.count == 32 else { throw CryptoError("mask seeds are 32 bytes, got \(seed.count)") }
        let stream: any Keystream = switch kind {
        case .aes: try AESCTRKeystream(key: Array(seed.prefix(16)))
        case .chacha: try ChaCha20Keystream(key: seed)
        }
        var failure: CryptoError?
        out.withUnsafeMutableBytes { bytes in
            do throws(CryptoError) { try stream.fill(bytes) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
