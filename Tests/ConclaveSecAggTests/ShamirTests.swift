import ConclaveCrypto
@testable import ConclaveSecAgg
import Testing

@Suite struct ShamirTests {
    @Test func fieldArithmetic() {
        let p = Field61.p
        #expect(Field61.mul(p - 1, p - 1) == 1)  // (−1)² = 1
        #expect(Field61.add(p - 1, 5) == 4)
        #expect(Field61.sub(3, 5) == p - 2)
        for a: UInt64 in [1, 2, 12345, p - 1, 1 << 60] { #expect(Field61.mul(a, Field61.inverse(a)) == 1) }
        // Against 128-bit reference products.
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 7, count: 32))
        for _ in 0..<1000 {
            let a = Field61.random(using: &rng), b = Field61.random(using: &rng)
            let (hi, lo) = a.multipliedFullWidth(by: b)
            let reference = p.dividingFullWidth((hi % p, lo)).remainder
            #expect(Field61.mul(a, b) == reference)
        }
    }

    @Test(arguments: [(1, 1), (2, 3), (3, 5), (7, 10), (51, 100)])
    func anyThresholdSubsetRecoversTheSecret(threshold: Int, count: Int) throws {
        let secret = SecureRandom.bytes(32)
        let shares = try Shamir.split(secret, threshold: threshold, shares: count)
        #expect(shares.count == count)
        #expect(try Shamir.combine(Array(shares.prefix(threshold)), threshold: threshold) == secret)
        #expect(try Shamir.combine(Array(shares.suffix(threshold).reversed()), threshold: threshold) == secret)
        var rng = ChaChaDRBG()
        let random = Array(shares.shuffled(using: &rng).prefix(threshold))
        #expect(try Shamir.combine(random, threshold: threshold) == secret)
    }

    @Test func fewerThanThresholdSharesFail() throws {
        let shares = try Shamir.split(Array("seed".utf8), threshold: 3, shares: 5)
        #expect(throws: CryptoError.self) { try Shamir.combine(Array(shares.prefix(2)), threshold: 3) }
        #expect(throws: CryptoError.self) { try Shamir.combine([shares[0], shares[0], shares[1]], threshold: 3) }
        #expect(throws: CryptoError.self) { try Shamir.split([1], threshold: 4, shares: 3) }
    }

    /// Perfect hiding for t = 2: one share of secret A is equally consistent with any other secret B — there is
    /// a degree-1 polynomial through (1, share) and (0, B), so one share says nothing about the secret.
    @Test func oneShareBelowThresholdFitsAnySecret() throws {
        let a = try Shamir.split([1, 2, 3], threshold: 2, shares: 3)
        let b: UInt64 = 0x0A0B0C  // the secret [0x0C, 0x0B, 0x0A], little-endian in its chunk
        let v = a[0].values[0]
        let slope = Field61.sub(v, b)  // f(x) = b + slope·x passes through (1, v)
        let forged = Shamir.Share(x: 2, values: [Field61.add(b, Field61.mul(2, slope))], secretLength: 3)
        #expect(try Shamir.combine([a[0], forged], threshold: 2) == [0x0C, 0x0B, 0x0A])
        #expect(try Shamir.combine([a[0], a[1]], threshold: 2) == [1, 2, 3])
    }
}
