/// Examples held in memory: `features` is row-major (`count` × `featureCount`), labels are class indices.
public struct Dataset: Sendable {
    public var features: [Float]
    public var labels: [Int32]
    public let featureCount: Int
    public let classCount: Int

    public init(features: [Float], labels: [Int32], featureCount: Int, classCount: Int) throws(DataError) {
        guard featureCount > 0 else { throw DataError("a dataset needs at least one feature") }
        guard features.count == labels.count * featureCount else {
            throw DataError("\(features.count) feature values do not fill \(labels.count) rows of \(featureCount)")
        }
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= classCount }) {
            throw DataError("label \(bad) is outside 0..<\(classCount)")
        }
        self.features = features
        self.labels = labels
        self.featureCount = featureCount
        self.classCount = classCount
    }

    public var count: Int { labels.count }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        var f = [Float]()
        f.reserveCapacity(indices.count * featureCount)
        var l = [Int32]()
        l.reserveCapacity(indices.count)
        features.withUnsafeBufferPointer { src in
            for i in indices {
                f.append(contentsOf: src[(i * featureCount)..<((i + 1) * featureCount)])
                l.append(labels[i])
            }
        }
        return try! Dataset(features: f, labels: l, featureCount: featureCount, classCount: classCount)
    }

    /// How many examples carry each label.
    public var labelHistogram: [Int] {
        var h = [Int](repeating: 0, count: classCount)
        for l in labels { h[Int(l)] += 1 }
        return h
    }
}
