import ConclaveFederation
import ConclaveStorage
import ConclaveWire
import ConclaveSupport
import ConclaveWireConversions
import Foundation
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

/// The durable log of the open secure-aggregation attempt: its header (round, selection, every silo's task),
/// then every message the attempt accepted, each appended and synced before the coordinator answers the phase.
/// After a crash the attempt is rebuilt by replaying the log into a fresh `SecureRound` (the protocol is
/// deterministic given its tasks and messages), so silos resume it instead of masking their update into a new
/// one. Records are [UInt64 length][UInt8 kind][payload]: kind 0 an `AttemptLogEntry` (protobuf), kind 1 the raw
/// little-endian words of the masked input whose header entry precedes it (written straight from the vector, no
/// copy). A torn last record is ignored.
final class SecureAttemptLog {
    let path: String
    private let fd: Int32
    /// Bytes appended so far (the cost of durability, reported when the attempt ends).
    private(set) var bytesWritten = 0

    static func path(directory: String, runID: String, round: Int) -> String {
        "\(directory)/\(runID)-round-\(round).attempt"
    }

    /// Opens the log for appending, creating it (with `header`) when it does not exist.
    init(path: String, header: Conclave_V1_AttemptHeader?) throws(StorageError) {
        self.path = path
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        let fresh = header != nil
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0o600)
        guard fd >= 0 else { throw StorageError("cannot open attempt log \(path): \(String(cString: strerror(errno)))") }
        if let header { try append(.with { $0.header = header }) }
    }

    deinit { close(fd) }

    func append(_ entry: Conclave_V1_AttemptLogEntry, sync: Bool = true) throws(StorageError) {
        let body: [UInt8]
        do { body = try entry.serializedBytes() } catch { throw StorageError("cannot encode attempt log entry: \(error)") }
        let failure = body.withUnsafeBytes { raw in record(kind: 0, raw, sync: sync) }
        if let failure { throw failure }
    }

    /// A masked input's words, after its header entry: written from the vector's own storage.
    func appendMasked(_ vector: [UInt32]) throws(StorageError) {
        let failure = vector.withUnsafeBytes { raw in record(kind: 1, raw, sync: true) }
        if let failure { throw failure }
    }

    /// Writes one record; returns the failure, if any.
    private func record(kind: UInt8, _ payload: UnsafeRawBufferPointer, sync: Bool) -> StorageError? {
        var head = [UInt8](repeating: 0, count: 9)
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { head.replaceSubrange(0..<8, with: $0) }
        head[8] = kind
        var ok = head.withUnsafeBytes { Self.writeAll(fd, $0) }
        ok = ok && Self.writeAll(fd, payload)
        guard ok, !sync || fsync(fd) == 0 else {
            return StorageError("cannot append to attempt log \(path): \(String(cString: strerror(errno)))")
        }
        bytesWritten += 9 + payload.count
        return nil
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 { if errno == EINTR { continue }; return false }
            done += n
        }
        return true
    }

    func remove() { unlink(path) }

    /// A record read back: an entry, or a masked input's raw words.
    enum Record {
        case entry(Conclave_V1_AttemptLogEntry)
        case masked([UInt32])
    }

    /// Every whole record in the file, in order (a partial last record, cut by a crash, is left out).
    static func read(path: String) -> [Record] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var records = [Record]()
        var offset = data.startIndex
        while offset + 9 <= data.endIndex {
            let length = data[offset..<(offset + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            let kind = data[offset + 8]
            let start = offset + 9
            guard length <= UInt64(data.endIndex - start) else { break }
            let end = start + Int(length)
            switch kind {
            case 0:
                guard let entry = try? Conclave_V1_AttemptLogEntry(serializedBytes: data[start..<end]) else { return records }
                records.append(.entry(entry))
            case 1:
                guard length % 4 == 0 else { return records }
                var words = [UInt32](repeating: 0, count: Int(length / 4))
                _ = words.withUnsafeMutableBytes { data[start..<end].copyBytes(to: $0) }
                records.append(.masked(words))
            default:
                return records
            }
            offset = end
        }
        return records
    }
}

/// Secure-round messages in the log's form and back.
enum AttemptLogCodec {
    static func entries(for message: SecureRound.Message, from silo: String) -> [Conclave_V1_AttemptLogEntry] {
        func entry(_ m: Conclave_V1_SecureClientMessage) -> Conclave_V1_AttemptLogEntry {
            .with { $0.silo = silo; $0.message = m }
        }
        switch message {
        case .keys(let ad, let stats):
            return [entry(.with {
                $0.join = .with {
                    $0.runID = ""
                    $0.keys = ad.proto
                    $0.numExamples = stats.examples
                    $0.trainLoss = stats.trainLoss
                    $0.trainSeconds = stats.trainSeconds
                    if let privacy = stats.privacy { $0.privacy = privacy.proto }
                }
            })]
        case .shares(let shares):
            return [entry(.with { $0.shares = .with { $0.shares = shares.map(\.proto) } })]
        case .maskedInput(let context, let vector):
            // The words follow as a raw record (`appendMasked`).
            return [entry(.with { $0.maskedHeader = .with { $0.context = Data(context); $0.totalValues = UInt64(vector.count) } })]
        case .survivorSignature(let signature):
            return [entry(.with { $0.survivorSignature = .with { $0.signature = Data(signature) } })]
        case .unmasking(let response):
            return [entry(.with { $0.unmasking = response.proto })]
        }
    }
}
