import ConclavePrivacy
import Foundation
import Testing

/// Building blocks of distributed DP (Kairouz, Liu & Steinke 2021).
@Suite struct DistributedPiecesTests {
    @Test func randomizedHadamardIsAnOrthonormalRotationItsInverseUndoes() {
        let values: [Float] = (0..<1000).map { Float(sin(Double($0))) * ($0 == 7 ? 50 : 1) }
        let rotation = RandomizedHadamard(dimension: 1000, seed: [UInt8](repeating: 4, count: 32))
        #expect(rotation.paddedDimension == 1024)
        let rotated = rotation.rotate(values)
        let norm = { (v: [Double]) in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let original = norm(values.map(Double.init))
        #expect(abs(norm(rotated) - original) < 1e-9 * original)
        // The spike at coordinate 7 is spread out: no rotated coordinate keeps much of it.
        #expect(rotated.map(abs).max()! < 0.25 * 50)
        let back = rotation.unrotate(rotated)
        #expect(zip(back, values).allSatisfy { abs($0 - Double($1)) < 1e-9 })
        // Same seed, same rotation (every silo and the coordinator agree); another seed, another one.
        #expect(RandomizedHadamard(dimension: 1000, seed: [UInt8](repeating: 4, count: 32)).rotate(values) == rotated)
        #expect(RandomizedHadamard(dimension: 1000, seed: [UInt8](repeating: 5, count: 32)).rotate(values) != rotated)
    }
}
