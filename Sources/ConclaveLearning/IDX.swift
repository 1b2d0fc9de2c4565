/// The IDX format of MNIST and Fashion-MNIST (unsigned-byte arrays with big-endian dimension sizes),
/// gzip-compressed or not.
public struct IDXArray: Sendable, Equatable {
    public var dimensions: [Int]
    public var bytes: [UInt8]

    public init(dimensions: [Int], bytes: [UInt8]) {
        precondition(dimensions.reduce(1, *) == bytes.count, "IDX dimensions do not match the data")
        self.dimensions = dimensions
        self.bytes = bytes
    }

    /// Number of items along the first dimension.
    public var count: Int { dimensions.first ?? 0 }
    /// Bytes per item (product of the remaining dimensions).
    public var itemSize: Int { dimensions.dropFirst().reduce(1, *) }

    /// The items at `indices`, in that order.
    public func subset(_ indices: [Int]) -> IDXArray {
        let size = itemSize
        var out = [UInt8]()
        out.reserveCapacity(indices.count * size)
        for i in indices { out.append(contentsOf: bytes[(i * size)..<((i + 1) * size)]) }
        return IDXArray(dimensions: [indices.count] + dimensions.dropFirst(), bytes: out)
    }
}

public enum IDX {
    public static func read(path: String) throws(DataError) -> IDXArray {
        let data = try Gzip.read(path: path)
        guard data.count >= 4, data[0] == 0, data[1] == 0 else {
            throw DataError("\(path): not an IDX file (bad magic number)")
        }
        guard data[2] == 0x08 else {
            throw DataError("\(path): IDX element type 0x\(String(data[2], radix: 16)) is not supported (only unsigned bytes)")
        }
        let rank = Int(data[3])
        let headerSize = 4 + 4 * rank
        guard rank >= 1, data.count >= headerSize else { throw DataError("\(path): truncated IDX header") }
        var dims = [Int]()
        for r in 0..<rank {
            let o = 4 + 4 * r
            dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        let sizes = dims.map(String.init).joined(separator: "×")
        guard let expected = checkedProduct(dims) else { throw DataError("\(path): IDX dimensions \(sizes) are too large") }
        guard data.count - headerSize == expected else {
            throw DataError("\(path): IDX header promises \(sizes) = \(expected) bytes of data, file holds \(data.count - headerSize)")
        }
        return IDXArray(dimensions: dims, bytes: Array(data[headerSize...]))
    }

    public static func write(_ array: IDXArray, path: String) throws(DataError) {
        var out: [UInt8] = [0, 0, 0x08, UInt8(array.dimensions.count)]
        for d in array.dimensions {
            out += [UInt8(truncatingIfNeeded: d >> 24), UInt8(truncatingIfNeeded: d >> 16),
                    UInt8(truncatingIfNeeded: d >> 8), UInt8(truncatingIfNeeded: d)]
        }
        out += array.bytes
        try Gzip.write(out, path: path)
    }

    /// Builds a dataset from an images file (n × rows × cols) and a labels file (n), scaling pixels to [0, 1].
    public static func dataset(images: IDXArray, labels: IDXArray, classCount: Int = 10,
                               imagesName: String = "images", labelsName: String = "labels") throws(DataError) -> Dataset {
        guard images.dimensions.count >= 2 else { throw DataError("\(imagesName): expected at least 2 dimensions") }
        guard labels.dimensions.count == 1 else { throw DataError("\(labelsName): expected 1 dimension") }
        guard images.count == labels.count else {
            throw DataError("\(imagesName) holds \(images.count) images but \(labelsName) holds \(labels.count) labels")
        }
        if let i = labels.bytes.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError("\(labelsName): label \(labels.bytes[i]) at item \(i) is not below \(classCount) classes")
        }
        let features = images.bytes.map { Float($0) / 255 }
        return try Dataset(features: features, labels: labels.bytes.map { Int32($0) },
                           featureCount: images.itemSize, classCount: classCount)
    }

    public static func dataset(imagesPath: String, labelsPath: String, classCount: Int = 10) throws(DataError) -> Dataset {
        try dataset(images: read(path: imagesPath), labels: read(path: labelsPath), classCount: classCount,
                    imagesName: imagesPath, labelsName: labelsPath)
    }
}
