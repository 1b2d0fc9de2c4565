import ConclaveCrypto
import ConclaveSecAgg
import Testing

@Suite struct EncodingTests {
    @Test func modularSumOfEncodingsDecodesToTheSumOfClippedUpdates() throws {
        let n = 100
        let encoding = try FixedPointEncoding(clipNorm: 1, maxSilos: n)
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 3, count: 32))
        var sum = [UInt32](repeating: 0, count: 50)
        var exact = [Double](repeating: 0, count: 50)
        for s in 0..<n {
            // Worst case for overflow: every silo pushes the same coordinate to the clip bound.
            let update = (0..<50).map { i in Float(i == 0 ? (s % 2 == 0 ? 5 : 1) : Double(s % 7) * 0.01 - 0.03) }
            let clipped = encoding.clip(update)
            for i in 0..<50 { exact[i] += Double(clipped[i]) }
            sum.addModular(encoding.encode(update, using: &rng))
        }
        let decoded = encoding.decode(sum: sum)
        for i in 0..<50 {
            // Each silo's rounding error is below one grid step.
            #expect(abs(Double(decoded[i]) - exact[i]) <= Double(n) / encoding.scale)
        }
        #expect(decoded[0] > 99, "100 silos at the clip bound must not overflow: \(decoded[0])")
    }

    /// When n leaves one word too few bits, values take two words; the sum still decodes exactly and cannot
    /// overflow with every silo at the clip bound.
    @Test func twoWordEncodingWhenNAndPrecisionNeedIt() throws {
        #expect(try FixedPointEncoding(clipNorm: 1, maxSilos: 100, precisionBits: 20).words == 1)
        let n = 5000  // one word leaves about 32 − 13 = 19 bits
        let encoding = try FixedPointEncoding(clipNorm: 1, maxSilos: n, precisionBits: 30)
        #expect(encoding.words == 2)
        #expect(encoding.encodedLength(3) == 6)
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 5, count: 32))
        var sum = [UInt32](repeating: 0, count: 6)
        var integers = [Int64](repeating: 0, count: 3)
        for s in 0..<n {
            let update: [Float] = [s % 2 == 0 ? 0.6 : -0.6, -0.8, 0]  // ‖·‖ = 1: at the clip bound
            let encoded = encoding.encode(update, using: &rng)
            for i in 0..<3 {
                // Rebuild each silo's integer from its two words: low digit plus B times the signed high digit.
                integers[i] += Int64(encoded[i]) + Int64(Int32(bitPattern: encoded[3 + i])) << (32 - 13)
            }
            sum.addModular(encoded)
        }
        let decoded = encoding.decode(sum: sum)
        for i in 0..<3 {
            #expect(Double(decoded[i]) == Double(Float(Double(integers[i]) / encoding.scale)), "coordinate \(i) decodes exactly")
        }
        #expect(abs(decoded[1] + 4000) < 0.01, "5000 silos at −0.8 sum to −4000, not an overflow: \(decoded[1])")
        #expect(abs(decoded[0]) < 0.01)
        #expect(throws: CryptoError.self) { try FixedPointEncoding(clipNorm: 1, maxSilos: 1 << 19, precisionBits: 48) }
    }

    @Test func stochasticRoundingIsUnbiased() throws {
        let encoding = try FixedPointEncoding(clipNorm: 1, maxSilos: 1)
        let value = Float(0.25 / encoding.scale)  // a quarter of one grid step
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 9, count: 32))
        let trials = 20_000
        let ups = (0..<trials).reduce(0) { acc, _ in acc + Int(encoding.encode([value], using: &rng)[0]) }
        // Binomial(20000, 0.25): mean 5000, sd ≈ 61; ±5 sd gives a false-alarm rate below 1e-6.
        #expect(abs(ups - 5000) < 306)
    }

    @Test func clippingBoundsTheNorm() throws {
        let encoding = try FixedPointEncoding(clipNorm: 2, maxSilos: 3)
        let clipped = encoding.clip([3, 4])
        #expect(abs(clipped[0] - 1.2) < 1e-6 && abs(clipped[1] - 1.6) < 1e-6)
        #expect(encoding.clip([0.1, 0.2]) == [0.1, 0.2])
        #expect(throws: CryptoError.self) { try FixedPointEncoding(clipNorm: 0, maxSilos: 3) }
    }
}
