public import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data. PyTorch, NumPy and JAX load it.
public enum Safetensors {
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape does not match its values")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            let size = t.values.count * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + size]]
            offset += size
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors { t.values.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String) throws {
        try encode(tensors, metadata: metadata).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Decodes F32 tensors, in file order. Other dtypes are refused by name.
    public static func decode(_ data: Data, source: String = "<safetensors>") throws(DataError) -> (tensors: [Tensor], metadata: [String: String]) {
        guard data.count >= 8 else { throw DataError("\(source): too short for a safetensors file") }
        let length = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 8) else { throw DataError("\(source): header length \(length) exceeds the file") }
        let headerData = data.subdata(in: 8..<(8 + Int(length)))
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw DataError("\(source): header is not a JSON object")
        }
        let base = 8 + Int(length)
        var tensors = [(Int, Tensor)]()
        var metadata = [String: String]()
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let range = entry["data_offsets"] as? [Int], range.count == 2
            else { throw DataError("\(source): tensor '\(name)' has a malformed header entry") }
            guard dtype == "F32" else { throw DataError("\(source): tensor '\(name)' is \(dtype); only F32 is supported") }
            guard let count = checkedProduct(shape), count <= (data.count - base) / 4, range[0] >= 0,
                  range[1] >= range[0], range[1] - range[0] == count * 4, range[1] <= data.count - base else {
                throw DataError("\(source): tensor '\(name)' byte range does not match its shape or the file")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                data.copyBytes(to: dst.bindMemory(to: UInt8.self), from: (base + range[0])..<(base + range[1]))
            }
            tensors.append((range[0], Tensor(name: name, shape: shape, values: values)))
        }
        return (tensors.sorted { $0.0 < $1.0 }.map(\.1), metadata)
    }

    public static func read(path: String) throws(DataError) -> (tensors: [Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): no such file") }
        return try decode(data, source: path)
    }
}

extension ModelSpec {
    /// The flat parameter vector as named tensors, PyTorch `nn.Linear` style: `layers.{i}.weight`
    /// (outputs × inputs) and `layers.{i}.bias`.
    public func tensors(from parameters: [Float]) -> [Safetensors.Tensor] {
        precondition(parameters.count == parameterCount, "parameter count mismatch")
        var out = [Safetensors.Tensor]()
        for (i, (l, o)) in zip(layers, offsets).enumerated() {
            out.append(.init(name: "layers.\(i).weight", shape: [l.outputs, l.inputs],
                             values: Array(parameters[o.weight..<o.bias])))
            out.append(.init(name: "layers.\(i).bias", shape: [l.outputs],
                             values: Array(parameters[o.bias..<(o.bias + l.outputs)])))
        }
        return out
    }

    /// The inverse of `tensors(from:)`: checks every name and shape.
    public func parameters(from tensors: [Safetensors.Tensor]) throws(DataError) -> [Float] {
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var params = [Float](repeating: 0, count: parameterCount)
        for (i, (l, o)) in zip(layers, offsets).enumerated() {
            for (suffix, shape, start) in [("weight", [l.outputs, l.inputs], o.weight), ("bias", [l.outputs], o.bias)] {
                let name = "layers.\(i).\(suffix)"
                guard let t = byName[name] else { throw DataError("tensor '\(name)' is missing") }
                guard t.shape == shape else { throw DataError("tensor '\(name)' has shape \(t.shape), \(summary) needs \(shape)") }
                params.replaceSubrange(start..<(start + t.values.count), with: t.values)
            }
        }
        return params
    }
}
