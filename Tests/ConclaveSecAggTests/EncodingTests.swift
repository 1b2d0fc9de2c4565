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
