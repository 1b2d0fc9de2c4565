@testable import ConclaveFederation
import Testing

/// DP-SGD's Poisson sample: deciding on a word's top byte first must pick exactly the records a whole-word
/// comparison would, and a real draw must include each record at the rate the accountant charges.
@Suite struct PoissonSampleTests {
    /// Bytes near the threshold's top byte (where the scan's test can raise false alarms and the low bits
    /// decide), against the plain rule: W = byte·2²⁴ + L < threshold, L taken in order only for ties.
    @Test(arguments: [0, 1, 0x0123_4567, 0x7eff_ffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff] as [UInt32])
    func byteFirstSelectionEqualsTheWholeWordRule(_ threshold: UInt32) {
        let top = Int(threshold >> 24), n = 64 * 40 + 37
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15 &+ UInt64(threshold)
        func next() -> UInt64 { state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; return state >> 33 }
        let bytes: [UInt8] = (0..<n).map { _ in
            let pick = [0, top, min(top + 1, 255), max(top - 1, 0), 255, Int(next() & 0xff)]
            return next() % 3 == 0 ? UInt8(pick[Int(next() % 6)]) : UInt8(truncatingIfNeeded: next())
        }
        let lows = (0..<n).map { _ in UInt32(truncatingIfNeeded: next()) & 0xff_ffff }
        var expected: [Int] = [], used = 0
        for i in 0..<n {
            if Int(bytes[i]) < top { expected.append(i) }
            if Int(bytes[i]) == top {
                if lows[used] < threshold & 0xff_ffff { expected.append(i) }
                used += 1
            }
        }
        var members = [Int](repeating: -1, count: n), drawn = 0
        let size = bytes.withUnsafeBufferPointer { b in
            members.withUnsafeMutableBufferPointer { m in
                PoissonSample.select(bytes: b.baseAddress!, count: n, threshold: threshold, into: m.baseAddress!) {
                    defer { drawn += 1 }
                    return lows[drawn]
                }
            }
        }
        #expect(Array(members[0..<size]) == expected)
        #expect(drawn == used, "low bits drawn only for ties with the top byte")
    }

    /// 20 draws over 100,000 records at q = 0.01: the total is Binomial(2·10⁶, ⌊q·2³²⌋/2³²), within 5σ; members
    /// are in range and increasing.
    @Test func drawsIncludeRecordsAtTheChargedRate() {
        let n = 100_000, q = 0.01
        var sample = PoissonSample(count: n, rate: q)
        var total = 0
        for _ in 0..<20 {
            sample.draw()
            let members = Array(sample.members[0..<sample.size])
            #expect(zip(members, members.dropFirst()).allSatisfy { $0 < $1 } && members.allSatisfy { $0 >= 0 && $0 < n })
            total += sample.size
        }
        let p = (q * 0x1p32).rounded(.down) / 0x1p32, trials = 20.0 * Double(n)
        let sd = (trials * p * (1 - p)).squareRoot()
        #expect(abs(Double(total) - trials * p) < 5 * sd, "\(total) members, expected \(trials * p)")
        var everyone = PoissonSample(count: 7, rate: 1)
        everyone.draw()
        #expect(Array(everyone.members[0..<everyone.size]) == Array(0..<7))
    }
}
