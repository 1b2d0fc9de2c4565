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

    static func quote(_ s: String) -> String {
        if !s.isEmpty, !s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) { return s }
        return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    /// Routes every logger in the process through logfmt at `level` ("info", "debug", ...).
    public static func bootstrap(level: String) {
        let parsed = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { LogfmtHandler(label: $0, level: parsed) }
    }
}
