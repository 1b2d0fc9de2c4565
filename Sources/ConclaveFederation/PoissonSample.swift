import ConclavePrivacy

/// DP-SGD's Poisson sampling: each step, every one of `count` records joins the sample independently, the
/// amplification-by-subsampling analysis the accountant charges. A record is in when its 32-bit random word
/// (AES-CTR under a fresh key — never a seeded, replayable generator) is below ⌊q·2³²⌋: probability ≤ q, so
/// accounting at q stays an upper bound. The word's top byte comes first and settles all but 1/256 of the records
/// (`select`), so a step reads about one keystream byte per record instead of four.
struct PoissonSample {
    let count: Int
    let rate: Double
    private let threshold: UInt32
    private var random = NoiseRandom()
    private var bytes: [UInt64]
    /// The members of the last draw are members[0..<size].
    private(set) var members: [Int]
    private(set) var size = 0

    init(count: Int, rate: Double) {
        self.count = count
        self.rate = rate
        threshold = UInt32(min(rate * 0x1p32, Double(UInt32.max)))
        bytes = [UInt64](repeating: 0, count: (count + 63) / 64 * 8)
        members = [Int](repeating: 0, count: count)
    }

    /// Draws a new sample; read it from `members[0..<size]`, in increasing order.
    mutating func draw() {
        if rate >= 1 {
            for i in 0..<count { members[i] = i }
            size = count
            return
        }
        var rng = random
        defer { random = rng }
        bytes.withUnsafeMutableBufferPointer { rng.fill($0) }
        let (t, n) = (threshold, count)
        size = bytes.withUnsafeBytes { b in
            members.withUnsafeMutableBufferPointer { m in
                Self.select(bytes: b.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n, threshold: t,
                            into: m.baseAddress!) { UInt32(truncatingIfNeeded: rng.next()) & 0xff_ffff }
            }
        }
    }

    /// Writes the i < count whose word W = bytes[i]·2²⁴ + L is below `threshold` into `members`, in order, and
    /// returns how many. L (24 bits from `low`) is drawn only when the byte alone cannot decide — when it equals
    /// the threshold's top byte — so each record is in with probability exactly threshold/2³², as when comparing
    /// whole words. Bytes are scanned 64 at a time: at q = 256/60,000 two in a hundred are candidates.
    static func select(bytes: UnsafePointer<UInt8>, count: Int, threshold: UInt32, into members: UnsafeMutablePointer<Int>,
                       low: () -> UInt32) -> Int {
        let top = UInt8(threshold >> 24), rest = threshold & 0xff_ffff
        var k = 0
        @inline(__always) func consider(_ i: Int) {
            let b = bytes[i]
            if b < top || (b == top && low() < rest) {
                members[k] = i
                k += 1
            }
        }
        var i = 0
        if top < 127 {
            // Eight bytes to a word: (x − (top+1)·0x01…01) & ~x & 0x80…80 flags every byte ≤ top (Mycroft's test;
            // with a bound ≤ 127 a borrow from the byte below can add a false alarm, never hide one), so 64 bytes
            // are skipped at once when none is flagged.
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            let bound = ones &* UInt64(top + 1)
            let words = UnsafeRawPointer(bytes)
            @inline(__always) func flags(_ at: Int) -> UInt64 {
                let x = words.loadUnaligned(fromByteOffset: at, as: UInt64.self)
                return (x &- bound) & ~x & highs
            }
            while i + 64 <= count {
                var any: UInt64 = 0
                for w in 0..<8 { any |= flags(i + 8 * w) }
                if any != 0 {
                    // A flagged byte may be a false alarm (a borrow from the byte below); `consider` decides.
                    for w in 0..<8 {
                        var m = flags(i + 8 * w)
                        while m != 0 {
                            consider(i + 8 * w + m.trailingZeroBitCount / 8)
                            m &= m &- 1
                        }
                    }
                }
                i += 64
            }
        }
        while i < count {
            consider(i)
            i += 1
        }
        return k
    }
}
