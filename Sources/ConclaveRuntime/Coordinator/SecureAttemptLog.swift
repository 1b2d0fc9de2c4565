import ConclaveFederation
import ConclaveStorage
import ConclaveWire
import Foundation
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

/// The durable log of the open secure-aggregation attempt: its header (round, selection, every silo's task),
/// then every message the attempt accepted, each appended and synced before the coordinator answers the phase.
/// After a crash the attempt is rebuilt by replaying the log into a fresh `SecureRound` (the protocol is
/// deterministic given its tasks and messages), so silos resume it instead of masking their update into a new
/// one. Entries are length-prefixed protobuf (`AttemptLogEntry`); a torn last entry is ignored.
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

    func append(_ entry: Conclave_V1_AttemptLogEntry) throws(StorageError) {
        let body: [UInt8]
        do { body = try entry.serializedBytes() } catch { throw StorageError("cannot encode attempt log entry: \(error)") }
        var length = UInt32(body.count).littleEndian
        var bytes = withUnsafeBytes(of: &length) { Array($0) }
        bytes += body
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw StorageError("cannot append to attempt log \(path): \(String(cString: strerror(errno)))")
        }
        bytesWritten += bytes.count
    }

    func remove() { unlink(path) }

    /// Every whole entry in the file, in order (a partial last entry, cut by a crash, is left out).
    static func read(path: String) -> [Conclave_V1_AttemptLogEntry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var entries = [Conclave_V1_AttemptLogEntry]()
        var offset = 0
        while offset + 4 <= data.count {
            let length = data[offset..<(offset + 4)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            guard offset + 4 + length <= data.count,
                  let entry = try? Conclave_V1_AttemptLogEntry(serializedBytes: data[(offset + 4)..<(offset + 4 + length)]) else { break }
            entries.append(entry)
            offset += 4 + length
        }
        return entries
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
            return [entry(.with { $0.maskedHeader = .with { $0.context = Data(context); $0.totalValues = UInt64(vector.count) } }),
                    entry(.with { $0.masked = .with { $0.offset = 0; $0.values = vector.withUnsafeBytes { Data($0) } } })]
        case .survivorSignature(let signature):
            return [entry(.with { $0.survivorSignature = .with { $0.signature = Data(signature) } })]
        case .unmasking(let response):
            return [entry(.with { $0.unmasking = response.proto })]
        }
    }
}
