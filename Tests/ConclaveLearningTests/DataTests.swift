import ConclaveLearning
import ConclaveTesting
import Foundation
import Testing

@Suite struct DataTests {
    @Test func idxRoundTripsThroughGzip() throws {
        let dir = Fixtures.temporaryDirectory()
        let images = IDXArray(dimensions: [3, 2, 2], bytes: [0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        let labels = IDXArray(dimensions: [3], bytes: [2, 0, 1])
        try IDX.write(images, path: dir + "/i.gz")
        try IDX.write(labels, path: dir + "/l.gz")
        #expect(try IDX.read(path: dir + "/i.gz") == images)
        let data = try IDX.dataset(imagesPath: dir + "/i.gz", labelsPath: dir + "/l.gz")
        #expect(data.count == 3)
        #expect(data.featureCount == 4)
        #expect(data.features[1] == 1)
        #expect(data.labels == [2, 0, 1])
        #expect(images.subset([2, 0]).bytes == [70, 80, 90, 100, 0, 255, 10, 20])
    }

    @Test func idxErrorsNameTheFile() throws {
        let dir = Fixtures.temporaryDirectory()
        let missing = dir + "/nope.gz"
        #expect(throws: DataError("\(missing): no such file")) { try IDX.read(path: missing) }
        _ = FileManager.default.createFile(atPath: dir + "/bad", contents: Data([1, 2, 3, 4, 5]))
        let error = #expect(throws: DataError.self) { try IDX.read(path: dir + "/bad") }
        #expect(error?.message.contains("bad magic number") == true)
        try IDX.write(IDXArray(dimensions: [2, 2], bytes: [1, 2, 3, 4]), path: dir + "/i.gz")
        try IDX.write(IDXArray(dimensions: [3], bytes: [1, 2, 3]), path: dir + "/l.gz")
        let mismatch = #expect(throws: DataError.self) { try IDX.dataset(imagesPath: dir + "/i.gz", labelsPath: dir + "/l.gz") }
        #expect(mismatch?.message.contains("2 images") == true)
    }

    @Test func fashionMNISTLoads() throws {
        guard Fixtures.hasFashionMNIST else { return }  // make test installs it; see README
        let test = try IDX.dataset(imagesPath: Fixtures.fashionMNIST + "/t10k-images-idx3-ubyte.gz",
                                   labelsPath: Fixtures.fashionMNIST + "/t10k-labels-idx1-ubyte.gz")
        #expect(test.count == 10_000)
        #expect(test.featureCount == 784)
        #expect(test.labelHistogram == [Int](repeating: 1000, count: 10))
    }

    @Test func csvReadsLabelColumnByName() throws {
        let data = try CSVReader.parse("a,label,b\n1.5,2,3\n-1,0,4e1\n", labelColumn: "label")
        #expect(data.count == 2)
        #expect(data.featureCount == 2)
        #expect(data.features == [1.5, 3, -1, 40])
        #expect(data.labels == [2, 0])
        #expect(data.classCount == 3)
    }

    @Test func csvErrorsNameFileLineAndColumn() {
        let bad = #expect(throws: DataError.self) {
            try CSVReader.parse("x,y,label\n1,2,0\n3,oops,1\n", labelColumn: "label", source: "silo.csv")
        }
        #expect(bad?.message == "silo.csv:3: column 'y': 'oops' is not a number")
        let short = #expect(throws: DataError.self) { try CSVReader.parse("x,label\n1\n", labelColumn: "label", source: "s.csv") }
        #expect(short?.message == "s.csv:2: 1 fields, header has 2")
        let noLabel = #expect(throws: DataError.self) { try CSVReader.parse("x,y\n1,2\n", labelColumn: "label", source: "s.csv") }
        #expect(noLabel?.message.hasPrefix("s.csv:1: no column named 'label'") == true)
        let badLabel = #expect(throws: DataError.self) { try CSVReader.parse("x,label\n1,1.5\n", labelColumn: "label", source: "s.csv") }
        #expect(badLabel?.message == "s.csv:2: column 'label': label '1.5' is not a non-negative integer")
        #expect(throws: DataError("/no/such.csv: no such file")) { try CSVReader.read(path: "/no/such.csv", labelColumn: "label") }
    }

    @Test(arguments: [Partitioner.Scheme.iid, .dirichlet(alpha: 0.5), .dirichlet(alpha: 100)])
    func partitionsCoverEveryIndexOnce(scheme: Partitioner.Scheme) throws {
        let labels = (0..<5000).map { Int32($0 % 10) }
        let parts = try Partitioner.partition(labels: labels, classCount: 10, silos: 7, scheme: scheme, seed: 3)
        #expect(parts.count == 7)
        #expect(parts.flatMap { $0 }.sorted() == Array(0..<5000))
        #expect(parts.allSatisfy { $0.count >= 10 })
        let again = try Partitioner.partition(labels: labels, classCount: 10, silos: 7, scheme: scheme, seed: 3)
        #expect(parts == again)
    }

    @Test func smallAlphaSkewsLabels() throws {
        let labels = (0..<10000).map { Int32($0 % 10) }
        func skew(_ alpha: Double) throws -> Double {
            let parts = try Partitioner.partition(labels: labels, classCount: 10, silos: 5, scheme: .dirichlet(alpha: alpha), seed: 9)
            // Mean over silos of the share held by the silo's most common label.
            return parts.map { p in
                var h = [Int](repeating: 0, count: 10)
                for i in p { h[Int(labels[i])] += 1 }
                return Double(h.max()!) / Double(p.count)
            }.reduce(0, +) / 5
        }
        #expect(try skew(0.1) > 0.4)
        #expect(try skew(1000) < 0.15)
    }

    @Test func safetensorsRoundTrip() throws {
        let spec = try ModelSpec(architecture: .mlp, inputFeatures: 5, hidden: [4], classCount: 3)
        let params = spec.initialParameters(seed: 2)
        let dir = Fixtures.temporaryDirectory()
        try Safetensors.write(spec.tensors(from: params), metadata: ["k": "v"], to: dir + "/m.safetensors")
        let (tensors, meta) = try Safetensors.read(path: dir + "/m.safetensors")
        #expect(meta == ["k": "v"])
        #expect(tensors.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
        #expect(tensors[0].shape == [4, 5])
        #expect(try spec.parameters(from: tensors) == params)
        let other = try ModelSpec(architecture: .mlp, inputFeatures: 5, hidden: [6], classCount: 3)
        #expect(throws: DataError.self) { try other.parameters(from: tensors) }
    }
}

@Suite struct ForgedHeaderTests {
    /// Sizes in a file header are untrusted: an overflowing product is an error, not a crash.
    @Test func forgedSizesAreErrors() throws {
        let dir = Fixtures.temporaryDirectory()
        // rank 3, each dimension 0x7fffffff: the product overflows Int.
        let idx: [UInt8] = [0, 0, 8, 3] + [UInt8](repeating: 0x7f, count: 1) + [0xff, 0xff, 0xff] + [0x7f, 0xff, 0xff, 0xff]
            + [0x7f, 0xff, 0xff, 0xff] + [1, 2, 3]
        _ = FileManager.default.createFile(atPath: dir + "/big", contents: Data(idx))
        let e = #expect(throws: DataError.self) { try IDX.read(path: dir + "/big") }
        #expect(e?.message.contains("too large") == true)

        let header = #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#
        var file = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { file.append(contentsOf: $0) }
        file.append(Data(header.utf8))
        file.append(Data(count: 16))
        #expect(throws: DataError.self) { try Safetensors.decode(file, source: "forged") }
    }
}
