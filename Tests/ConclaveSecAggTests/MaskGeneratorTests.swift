import ConclaveCrypto
import ConclaveSecAgg
import Testing

@Suite struct MaskGeneratorTests {
    /// A keystream read from an offset equals the same bytes of the keystream read from the start.
    @Test(arguments: [MaskGenerator.Kind.aes, .chacha])
    func keystreamOffsetsAgreeWithOneLongRead(kind: MaskGenerator.Kind) throws {
        let key = SecureRandom.bytes(32)
        let stream: any Keystream = kind == .aes ? try AESCTRKeystream(key: Array(key.prefix(16))) : try ChaCha20Keystream(key: key)
        var whole = [UInt8](repeating: 0, count: 64 * 300)
        try whole.withUnsafeMutableBytes { try stream.fill($0) }
        for offset in [64, 640, 64 * 257] {
            var part = [UInt8](repeating: 0, count: 64 * 40)
            try part.withUnsafeMutableBytes { try stream.fill($0, byteOffset: offset) }
            #expect(Array(whole[offset..<min(whole.count, offset + part.count)]) == Array(part.prefix(whole.count - offset)))
        }
        #expect(throws: CryptoError.self) {
            var b = [UInt8](repeating: 0, count: 64)
            try b.withUnsafeMutableBytes { try stream.fill($0, byteOffset: 10) }
        }
    }

    /// Applying many masks in cache-sized pieces on two threads equals adding each whole mask in turn.
    @Test(arguments: [MaskGenerator.Kind.aes, .chacha])
    func piecewiseParallelApplicationEqualsSequentialSums(kind: MaskGenerator.Kind) throws {
        let length = 40_000  // several pieces and a ragged end
        let terms = (0..<5).map { i in MaskGenerator.Term(seed: SecureRandom.bytes(32), sign: i % 2 == 0 ? 1 : -1) }
        var expected = (0..<length).map { UInt32($0) }
        for term in terms {
            let mask = try MaskGenerator.expand(seed: term.seed, kind: kind, count: length)
            for i in 0..<length { expected[i] = term.sign > 0 ? expected[i] &+ mask[i] : expected[i] &- mask[i] }
        }
        var actual = (0..<length).map { UInt32($0) }
        try MaskGenerator.apply(terms, kind: kind, to: &actual, threads: 2)
        #expect(actual == expected)
        // And a mask and its negation cancel exactly.
        try MaskGenerator.apply(terms.map { MaskGenerator.Term(seed: $0.seed, sign: -$0.sign) }, kind: kind, to: &actual, threads: 2)
        #expect(actual == (0..<length).map { UInt32($0) })
    }

    /// A cursor's sequential reads reproduce the one-shot keystream from its starting offset.
    @Test(arguments: [MaskGenerator.Kind.aes, .chacha])
    func cursorReadsMatchOneShotFill(kind: MaskGenerator.Kind) throws {
        let key = SecureRandom.bytes(32)
        let stream: any Keystream = kind == .aes ? try AESCTRKeystream(key: Array(key.prefix(16))) : try ChaCha20Keystream(key: key)
        var whole = [UInt8](repeating: 0, count: 64 * 100)
        try whole.withUnsafeMutableBytes { try stream.fill($0) }
        let cursor = try KeystreamCursor(stream, byteOffset: 128)
        var read = [UInt8]()
        for size in [64, 640, 1280, 37] {
            var part = [UInt8](repeating: 0xEE, count: size)
            try part.withUnsafeMutableBytes { try cursor.next($0) }
            read += part
        }
        #expect(read == Array(whole[128..<(128 + read.count)]))
        var more = [UInt8](repeating: 0, count: 64)
        #expect(throws: CryptoError.self) { try more.withUnsafeMutableBytes { try cursor.next($0) } }
    }

    @Test func masksAreNotTrivial() throws {
        let mask = try MaskGenerator.expand(seed: SecureRandom.bytes(32), kind: .aes, count: 4096)
        #expect(Set(mask).count > 4000)
        #expect(throws: CryptoError.self) { try MaskGenerator.expand(seed: [1, 2], kind: .aes, count: 4) }
    }
}
