import ConclaveFederation
import Foundation
public import Logging

/// One structured line per event on standard error, in logfmt:
/// `ts=2026-11-24T21:00:00.123Z level=info label=coordinator msg="round closed" round=3 silos=5`.
public struct LogfmtHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let time = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
        var line = "ts=\(time) level=\(event.level) label=\(label) msg=\(Self.quote(event.message.description))"
        for key in merged.keys.sorted() { line += " \(key)=\(Self.quote(merged[key]!.description))" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Longest value written, in characters: whatever a peer sends, one log line stays small.
    static let maxValueCharacters = 512

    /// A logfmt value: bare when it is plain, else quoted; control characters (CR, ESC, NUL, …) are always
    /// escaped and long values cut, so nothing a peer sends can forge a line or flood the log.
    static func quote(_ s: String) -> String {
        var body = ""
        var plain = !s.isEmpty
        var count = 0
        for scalar in s.unicodeScalars {
            if count == maxValueCharacters {
                body += "…[\(s.utf8.count) bytes]"
                plain = false
                break
            }
            let escaped = WireCheck.escape(scalar)
            if escaped.count != 1 || scalar == " " || scalar == "=" || scalar.properties.isWhitespace { plain = false }
            body += escaped
            count += 1
        }
        return plain ? body : "\"" + body + "\""
    }

    /// Routes every logger in the process through logfmt at `level` ("info", "debug", ...).
    public static func bootstrap(level: String) {
        let parsed = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { LogfmtHandler(label: $0, level: parsed) }
    }
}
