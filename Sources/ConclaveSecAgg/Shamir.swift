public import ConclaveCrypto

/// t-of-n Shamir secret sharing of byte strings over GF(2⁶¹ − 1). The secret is cut into 7-byte chunks (each
/// below p), and every chunk is the constant term of its own random polynomial of degree t − 1. Any t shares
/// recover it; t − 1 reveal nothing.
public enum Shamir {
    public struct Share: Sendable, Equatable, Codable {
        /// The evaluation point, 1…n (never 0: that is the secret).
        public let x: UInt64
        /// One field element per 7-byte chunk of the secret.
        public let values: [UInt64]
        /// Length of the shared secret in bytes.
        public let secretLength: Int

        public init(x: UInt64, values: [UInt64], secretLength: Int) {
            self.x = x
            self.values = values
            self.secretLength = secretLength
        }
    }

    static let chunk = 7

    public static func split(_ secret: [UInt8], threshold: Int, shares count: Int) throws(CryptoError) -> [Share] {
        var rng = ChaChaDRBG()
        return try split(secret, threshold: threshold, shares: count, using: &rng)
    }

    public static func split(_ secret: [UInt8], threshold: Int, shares count: Int,
                             using rng: inout some RandomNumberGenerator) throws(CryptoError) -> [Share] {
        guard threshold >= 1, threshold <= count else {
            throw CryptoError("Shamir threshold must be in 1…\(count), got \(threshold)")
        }
        guard !secret.isEmpty else { throw CryptoError("cannot share an empty secret") }
        let chunks = stride(from: 0, to: secret.count, by: chunk).map { start in
            secret[start..<min(start + chunk, secret.count)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        // coefficients[c][k]: coefficient of xᵏ for chunk c; the constant term is the chunk itself.
        let coefficients = chunks.map { c in [c] + (1..<threshold).map { _ in Field61.random(using: &rng) } }
        return (1...count).map { i in
            let x = UInt64(i)
            let values = coefficients.map { poly in
                poly.reversed().reduce(UInt64(0)) { acc, a in Field61.add(Field61.mul(acc, x), a) }  // Horner
            }
            return Share(x: x, values: values, secretLength: secret.count)
        }
    }

    /// Recovers the secret from at least `threshold` shares with distinct points (uses the first `threshold`).
    public static func combine(_ shares: [Share], threshold: Int) throws(CryptoError) -> [UInt8] {
        guard threshold >= 1, shares.count >= threshold else {
            throw CryptoError("need \(threshold) shares to recover the secret, got \(shares.count)")
        }
        let used = Array(shares.prefix(threshold))
        guard Set(used.map(\.x)).count == used.count, used.allSatisfy({ $0.x != 0 && $0.x < Field61.p }) else {
            throw CryptoError("shares must have distinct, non-zero evaluation points")
        }
        let length = used[0].secretLength
        let chunkCount = (length + chunk - 1) / chunk
        guard used.allSatisfy({ $0.secretLength == length && $0.values.count == chunkCount }),
              used.allSatisfy({ $0.values.allSatisfy { $0 < Field61.p } })
        else { throw CryptoError("shares do not belong to the same secret") }
        // Lagrange basis at 0: λᵢ = Π_{j≠i} xⱼ / (xⱼ − xᵢ).
        let lambdas = used.indices.map { i in
            var num: UInt64 = 1, den: UInt64 = 1
            for j in used.indices where j != i {
                num = Field61.mul(num, used[j].x)
                den = Field61.mul(den, Field61.sub(used[j].x, used[i].x))
            }
            return Field61.mul(num, Field61.inverse(den))
        }
        var secret = [UInt8]()
        secret.reserveCapacity(length)
        for c in 0..<chunkCount {
            var value: UInt64 = 0
            for (i, share) in used.enumerated() { value = Field61.add(value, Field61.mul(lambdas[i], share.values[c])) }
            let bytes = min(chunk, length - c * chunk)
            // A cheap sanity check, not authentication (that is the AEAD around each share): a wrong share
            // usually lands outside the chunk's byte range.
            guard value >> (8 * bytes) == 0 else { throw CryptoError("shares are inconsistent: recovered chunk out of range") }
            for b in 0..<bytes { secret.append(UInt8(truncatingIfNeeded: value >> (8 * b))) }
        }
        return secret
    }
}
