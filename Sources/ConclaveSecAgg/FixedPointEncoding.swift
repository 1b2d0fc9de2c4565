public import ConclaveCrypto

/// Turns float updates into integers that sum without overflow in Z_{2^32} (secure aggregation's group) and
/// back: clip each update to L2 norm ≤ `clipNorm`, scale, round stochastically (unbiased), wrap to UInt32.
///
/// Every coordinate of a clipped update lies in [−C, C], so after scaling by s and rounding it lies in
/// [−(Cs + 1), Cs + 1]; the sum over at most `maxSilos` silos lies in ±n(Cs + 1). Choosing
/// s = (2³¹ − 1 − n) / (nC) keeps that inside the signed 32-bit range, so the modular sum decodes exactly.
/// (C is taken a millionth larger, covering float rounding in clipping and weighting.)
public struct FixedPointEncoding: Sendable, Equatable {
    public let clipNorm: Double
    public let maxSilos: Int
    /// Grid points per unit.
    public let scale: Double

    public init(clipNorm: Double, maxSilos: Int) throws(CryptoError) {
        guard clipNorm > 0, clipNorm.isFinite else { throw CryptoError("clip norm must be positive, got \(clipNorm)") }
        guard maxSilos >= 1, maxSilos < 1 << 20 else { throw CryptoError("max silos must be in 1…2²⁰, got \(maxSilos)") }
        self.clipNorm = clipNorm
        self.maxSilos = maxSilos
        self.scale = (Double(Int32.max) - Double(maxSilos)) / (Double(maxSilos) * clipNorm * 1.000001)
    }

    /// The update scaled down, if needed, to L2 norm ≤ clipNorm.
    public func clip(_ update: [Float]) -> [Float] {
        let norm = update.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > clipNorm else { return update }
        let factor = Float(clipNorm / norm)
        return update.map { $0 * factor }
    }

    /// Clips, scales and rounds stochastically: x·s rounds up with probability equal to its fractional part.
    public func encode(_ update: [Float], using rng: inout some RandomNumberGenerator) -> [UInt32] {
        clip(update).map { value in
            let scaled = Double(value) * scale
            let floor = scaled.rounded(.down)
            let up = Double(rng.next() >> 11) * 0x1p-53 < scaled - floor
            let integer = Int64(floor) + (up ? 1 : 0)
            return UInt32(truncatingIfNeeded: integer)
        }
    }

    /// Decodes a modular sum of at most `maxSilos` encodings.
    public func decode(sum: [UInt32]) -> [Float] {
        sum.map { Float(Double(Int32(bitPattern: $0)) / scale) }
    }
}

extension Array where Element == UInt32 {
    /// Element-wise addition modulo 2³² (the group secure aggregation sums in).
    public mutating func addModular(_ other: [UInt32]) {
        precondition(count == other.count, "length mismatch: \(count) vs \(other.count)")
        withUnsafeMutableBufferPointer { a in
            other.withUnsafeBufferPointer { b in for i in 0..<b.count { a[i] &+= b[i] } }
        }
    }
}
