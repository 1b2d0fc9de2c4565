import ConclavePrivacy
import ConclaveTensor

/// DP-SGD's Poisson sampling: each step, every one of `count` records joins the sample independently, the
/// amplification-by-subsampling analysis the accountant charges. A record is in when its 32-bit keystream word
/// (AES-CTR under a fresh key — never a seeded, replayable generator) is below ⌊q·2³²⌋: probability ≤ q, so
/// accounting at q stays an upper bound.
struct PoissonSample {
    let count: Int
    let rate: Double
    private let threshold: UInt32
    private var random = NoiseRandom()
    private var words: [UInt64]
    /// The members of the last draw are members[0..<size].
    private(set) var members: [Int]
    private(set) var size = 0

    init(count: Int, rate: Double) {
        self.count = count
        self.rate = rate
        threshold = UInt32(min(rate * 0x1p32, Double(UInt32.max)))
        words = [UInt64](repeating: 0, count: ((count + 1) / 2 + 7) & ~7)
        members = [Int](repeating: 0, count: count)
    }

    /// Draws a new sample; read it from `members[0..<size]`, in increasing order.
    mutating func draw() {
        var k = 0
        if rate >= 1 {
            for i in 0..<count { members[i] = i }
            k = count
        } else {
            words.withUnsafeMutableBufferPointer { random.fill($0) }
            let t = threshold, n = count
            words.withUnsafeBufferPointer { w in
                members.withUnsafeMutableBufferPointer { m in
                    Elementwise.forEachBelow(t, in: UnsafeRawPointer(w.baseAddress!).assumingMemoryBound(to: UInt32.self),
                                             count: n) { i in
                        m[k] = i
                        k += 1
                    }
                }
            }
        }
        size = k
    }
}
