public import ConclaveFederation
public import ConclaveWire
import Foundation

/// Vectors on the wire: little-endian float32 (weights, updates) or uint32 (masked inputs) values in chunks
/// of at most 1 MiB (see conclave.proto).
public enum WeightsCodec {
    public static let valuesPerChunk = 262_144

    /// The chunk starting at `offset`.
    public static func chunk<Element: FourByteValue>(_ values: [Element], offset: Int) -> Conclave_V1_WeightsChunk {
        let end = min(values.count, offset + valuesPerChunk)
        var chunk = Conclave_V1_WeightsChunk()
        chunk.offset = UInt64(offset)
        chunk.values = values[offset..<end].withUnsafeBytes { Data($0) }
        return chunk
    }

    /// Offsets of the chunks that carry `count` values.
    public static func offsets(count: Int) -> StrideTo<Int> { stride(from: 0, to: count, by: valuesPerChunk) }
}

/// The element types that travel in `WeightsChunk`s.
public protocol FourByteValue: BitwiseCopyable, Sendable { static var zero: Self { get } }
extension Float: FourByteValue {}
extension UInt32: FourByteValue {}

public typealias WeightsAssembler = VectorAssembler<Float>

/// Rebuilds a vector from its chunks, refusing anything out of order, misaligned or over-long, so a
/// malformed stream is an error and never a silently wrong vector.
public struct VectorAssembler<Element: FourByteValue>: Sendable {
    public let total: Int
    public private(set) var values: [Element]
    private var filled = 0
    private let what: String

    public init(total: UInt64, expected: Int, what: String) throws(FederationError) {
        guard total == UInt64(expected) else {
            throw FederationError(.invalidArgument, "\(what) announces \(total) values; the model has \(expected) parameters")
        }
        self.total = expected
        self.values = [Element](repeating: .zero, count: expected)
        self.what = what
    }

    public mutating func add(_ chunk: Conclave_V1_WeightsChunk) throws(FederationError) {
        let bytes = chunk.values
        guard bytes.count % 4 == 0 else {
            throw FederationError(.invalidArgument, "\(what): chunk at offset \(chunk.offset) is \(bytes.count) bytes, not a multiple of 4")
        }
        let n = bytes.count / 4
        guard n <= WeightsCodec.valuesPerChunk else {
            throw FederationError(.invalidArgument, "\(what): chunk at offset \(chunk.offset) holds \(n) values, more than \(WeightsCodec.valuesPerChunk)")
        }
        guard chunk.offset == UInt64(filled) else {
            throw FederationError(.invalidArgument, "\(what): chunk at offset \(chunk.offset) arrived, expected offset \(filled)")
        }
        guard filled + n <= total else {
            throw FederationError(.invalidArgument, "\(what): more than the announced \(total) values arrived")
        }
        let start = filled
        _ = values.withUnsafeMutableBytes { dst in
            bytes.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: dst[(start * 4)..<((start + n) * 4)]))
        }
        filled += n
    }

    public var isComplete: Bool { filled == total }

    public func finish() throws(FederationError) -> [Element] {
        guard filled == total else {
            throw FederationError(.invalidArgument, "\(what): stream ended after \(filled) of \(total) values")
        }
        return values
    }
}
