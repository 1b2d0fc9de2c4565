public import ConclaveLearning
import Foundation

/// Shared test data: small synthetic datasets and temporary directories.
public enum Fixtures {
    /// `count` points in `features` dimensions from `classes` Gaussian blobs: easy to learn, so accuracy
    /// must rise quickly when training works.
    public static func blobs(count: Int, features: Int = 8, classes: Int = 3, seed: UInt64 = 1,
                             spread: Double = 0.5) -> Dataset {
        var rng = SeededGenerator(seed: seed)
        var centersRNG = SeededGenerator(seed: 99)
        let centers = (0..<classes).map { _ in (0..<features).map { _ in centersRNG.nextGaussian() * 2 } }
        var x = [Float](), y = [Int32]()
        for i in 0..<count {
            let c = i % classes
            for f in 0..<features { x.append(Float(centers[c][f] + rng.nextGaussian() * spread)) }
            y.append(Int32(c))
        }
        return try! Dataset(features: x, labels: y, featureCount: features, classCount: classes)
    }

    /// A fresh empty directory under the system temporary directory.
    public static func temporaryDirectory(_ name: String = "conclave-test") -> String {
        let path = NSTemporaryDirectory() + "/\(name)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static let fashionMNIST = "/usr/share/datasets/fashion-mnist"
    public static var hasFashionMNIST: Bool {
        FileManager.default.fileExists(atPath: fashionMNIST + "/train-images-idx3-ubyte.gz")
    }
}
