import CSodium

/// Randomness from libsodium's CSPRNG (getrandom on Linux). Used for seeds and, later, DP noise.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        Sodium.ensureReady()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return out
    }

}
