import Foundation

/// Reading a configuration file from disk, and resolving the paths written in it.
public enum ConfigFile {
    public static func text(at path: String) throws(ConfigError) -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigError("\(path): no such file") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw ConfigError("\(path): cannot read as UTF-8 text") }
        return text
    }

    /// `path` as written in a config file: relative paths are taken from the file's own directory.
    public static func resolve(_ path: String, relativeTo configPath: String?) -> String {
        guard !path.hasPrefix("/"), let configPath else { return path }
        let dir = URL(fileURLWithPath: configPath).deletingLastPathComponent()
        return dir.appendingPathComponent(path).standardizedFileURL.path
    }
}

/// "host:port" as written in configs.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ConfigError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port), colon != text.startIndex
        else { throw ConfigError("'\(text)' is not host:port (e.g. 127.0.0.1:7300)") }
        self.host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
