@testable import ConclaveLearning
import Testing

@Suite struct HugePagesTests {
    /// A dataset large enough to be moved into huge-page memory keeps every value, and a small one is kept as is.
    @Test func rehomedFeaturesAreTheSameValues() throws {
        let rows = 3_000, width = 784  // 9.4 MB of features: above the threshold
        let features = (0..<(rows * width)).map { Float($0 % 9973) / 9973 }
        let data = try Dataset(features: features, labels: (0..<rows).map { Int32($0 % 10) }, featureCount: width, classCount: 10)
        #expect(rows * width * 4 >= HugePages.threshold)
        #expect(data.features == features)
        let small = [Float](repeating: 0.5, count: 10)
        #expect(HugePages.rehome(small) == small)
    }
}
