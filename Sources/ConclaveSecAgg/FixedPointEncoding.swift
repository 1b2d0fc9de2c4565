public import ConclaveCrypto

/// Turns float updates into integers that sum without overflow in Z_{2^32} (secure aggregation's group) and
/// back: clip each update to L2 norm ≤ `clipNorm`, scale, round stochastically (unbiased), wrap to UInt32.
///
/// Every coordinate of a clipped update lies in [−C, C]; scaled by s and rounded it lies in [−(Cs + 1), Cs + 1],
/// and the sum over at most n silos in ±n(Cs + 1). One 32-bit word per value takes s = (2³¹ − 1 − n) / (nC):
/// the finest grid for which the sum cannot overflow, about 32 − log₂ n bits across [−C, C]. When that is
/// fewer than `precisionBits`, each value takes two words instead (the group becomes Z_{2^32}², still masked
/// word by word): s = 2^(p−1)/C, and the integer v splits as v = a + B·b with 0 ≤ a < B = 2^(32 − ⌈log₂(n+1)⌉),
/// so n low digits sum below 2³² and n high digits stay within a signed word; the sum decodes exactly as
/// Σa + B·Σb. (C is taken a millionth larger, covering float rounding in clipping and weighting.)
public struct FixedPointEncoding: Sendable, Equatable {
    public let clipNorm: Double
    public let maxSilos: Int
    /// The fewest bits of resolution each value must get across [−C, C].
    public let precisionBits: Int
    /// 32-bit words per value: 1, or 2 when n and `precisionBits` need more than one word.
    public let words: Int
    /// Grid points per unit.
    public let scale: Double
    /// log₂ B, the base of the low word in the two-word encoding.
    let lowBits: Int

    public init(clipNorm: Double, maxSilos: Int, precisionBits: Int = 20) throws(CryptoError) {
        guard clipNorm > 0, clipNorm.isFinite else { throw CryptoError("clip norm must be positive, got \(clipNorm)") }
        guard maxSilos >= 1, maxSilos < 1 << 20 else { throw CryptoError("max silos must be in 1…2²⁰, got \(maxSilos)") }
        guard (8...48).contains(precisionBits) else {
            throw CryptoError("precision must be 8…48 bits per value, got \(precisionBits)")
        }
        self.clipNorm = clipNorm
        self.maxSilos = maxSilos
        self.precisionBits = precisionBits
        let bound = clipNorm * 1.000001
        let oneWordScale = (Double(Int32.max) - Double(maxSilos)) / (Double(maxSilos) * bound)
        lowBits = 32 - ceilLog2(maxSilos + 1)
        if (2 * oneWordScale * clipNorm).exponent >= precisionBits {
            words = 1
            scale = oneWordScale
        } else {
            words = 2
            scale = Double(1 << (precisionBits - 1)) / bound
            // High digits: |b| ≤ 2^(p−1−lowBits) + 1 each; n of them must stay within a signed word.
            let highMax = Double(1 << max(0, precisionBits - 1 - lowBits)) + 1
            guard Double(maxSilos) * highMax < Double(Int32.max) else {
                throw CryptoError("\(precisionBits)-bit precision for \(maxSilos) silos needs more than 64 bits per value")
            }
        }
    }

    /// Length of an encoded vector of `count` values.
    public func encodedLength(_ count: Int) -> Int { count * words }

    /// The update scaled down, if needed, to L2 norm ≤ clipNorm.
    public func clip(_ update: [Float]) -> [Float] {
        let norm = update.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > clipNorm else { return update }
        let factor = Float(clipNorm / norm)
        return update.map { $0 * factor }
    }

    /// Clips, scales and rounds stochastically: x·s rounds up with probability equal to its fractional part.
    /// Two-word encodings lay out all low words, then all high words.
    public func encode(_ update: [Float], using rng: inout some RandomNumberGenerator) -> [UInt32] {
        let integers = clip(update).map { value in
            let scaled = Double(value) * scale
            let floor = scaled.rounded(.down)
            let up = Double(rng.next() >> 11) * 0x1p-53 < scaled - floor
            return Int64(floor) + (up ? 1 : 0)
        }
        guard words == 2 else { return integers.map { UInt32(truncatingIfNeeded: $0) } }
        let mask = Int64(1) << lowBits - 1
        return integers.map { UInt32($0 & mask) } + integers.map { UInt32(truncatingIfNeeded: $0 >> lowBits) }
    }

    /// Decodes a modular sum of at most `maxSilos` encodings.
    public func decode(sum: [UInt32]) -> [Float] {
        guard words == 2 else { return sum.map { Float(Double(Int32(bitPattern: $0)) / scale) } }
        let d = sum.count / 2
        let base = Double(Int64(1) << lowBits)
        return (0..<d).map { i in
            Float((Double(sum[i]) + base * Double(Int32(bitPattern: sum[d + i]))) / scale)
        }
    }
}

/// ⌈log₂ x⌉ for x ≥ 1.
func ceilLog2(_ x: Int) -> Int { x <= 1 ? 0 : Int.bitWidth - (x - 1).leadingZeroBitCount }

extension Array where Element == UInt32 {
    /// Element-wise addition modulo 2³² (the group secure aggregation sums in).
    public mutating func addModular(_ other: [UInt32]) {
        precondition(count == other.count, "length mismatch: \(count) vs \(other.count)")
        withUnsafeMutableBufferPointer { a in
            other.withUnsafeBufferPointer { b in for i in 0..<b.count { a[i] &+= b[i] } }
        }
    }
}
