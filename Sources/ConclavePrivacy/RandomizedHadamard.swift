import ConclaveCrypto

/// The randomized Hadamard rotation of distributed DP (Kairouz, Liu & Steinke, ICML 2021, §4): pad a vector to
/// d' = 2ᵏ, flip each coordinate's sign by a public random ±1 (from a seed every silo and the coordinator
/// share), and apply the Walsh–Hadamard transform scaled by 1/√d'. The rotation is orthonormal, so L2 norms are
/// kept, and it spreads a vector's mass evenly over the coordinates, so that rounding and the modular sum lose
/// little on any one of them. Its inverse undoes it on the (noisy) sum.
public struct RandomizedHadamard: Sendable {
    public let dimension: Int
    public let paddedDimension: Int
    private let signs: [Double]

    public init(dimension: Int, seed: [UInt8]) {
        precondition(dimension > 0, "the rotation needs a positive dimension")
        self.dimension = dimension
        let padded = Self.paddedDimension(for: dimension)
        paddedDimension = padded
        var rng = ChaChaDRBG(seed: seed)
        var signs = [Double](repeating: 1, count: padded)
        var word: UInt64 = 0
        for i in 0..<padded {
            if i % 64 == 0 { word = rng.next() }
            if (word >> (i % 64)) & 1 == 1 { signs[i] = -1 }
        }
        self.signs = signs
    }

    /// The power of two a vector of `dimension` values is padded to.
    public static func paddedDimension(for dimension: Int) -> Int {
        var padded = 1
        while padded < dimension { padded <<= 1 }
        return padded
    }

    /// H·D·x/√d' of `values` padded with zeros.
    public func rotate(_ values: [Float]) -> [Double] {
        precondition(values.count == dimension, "rotation of \(values.count) values, expected \(dimension)")
        var out = [Double](repeating: 0, count: paddedDimension)
        for i in 0..<dimension { out[i] = Double(values[i]) * signs[i] }
        Self.walshHadamard(&out)
        return out
    }

    /// D·H·y/√d', cut back to the first `dimension` coordinates.
    public func unrotate(_ values: [Double]) -> [Double] {
        precondition(values.count == paddedDimension, "inverse rotation of \(values.count) values, expected \(paddedDimension)")
        var out = values
        Self.walshHadamard(&out)
        return (0..<dimension).map { out[$0] * signs[$0] }
    }

    /// The orthonormal fast Walsh–Hadamard transform in place (its own inverse).
    static func walshHadamard(_ v: inout [Double]) {
        let n = v.count
        v.withUnsafeMutableBufferPointer { p in
            var h = 1
            while h < n {
                var i = 0
                while i < n {
                    for j in i..<(i + h) {
                        let a = p[j], b = p[j + h]
                        p[j] = a + b
                        p[j + h] = a - b
                    }
                    i += 2 * h
                }
                h <<= 1
            }
            let scale = 1 / Double(n).squareRoot()
            for j in 0..<n { p[j] *= scale }
        }
    }
}
