/// Typed, checked access to one table of a configuration file. Every error names the file, the key (with
/// its table) and, where the key exists, its line; keys nobody read are reported as unknown (typos).
public final class ConfigSection {
    public let source: String
    public let path: String
    private let table: TOMLTable
    private var read: Set<String> = []

    public init(table: TOMLTable, source: String, path: String = "") {
        self.table = table
        self.source = source
        self.path = path
    }

    public static func load(text: String, source: String) throws(ConfigError) -> ConfigSection {
        ConfigSection(table: try TOMLParser.parse(text, source: source), source: source)
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func at(_ key: String) -> String {
        if let line = table.lines[key] { return "\(source):\(line)" }
        return source
    }

    private func wrongType(_ key: String, _ expected: String, _ value: TOMLValue) -> ConfigError {
        ConfigError("\(at(key)): key '\(name(key))' must be \(expected), got \(value.typeName)")
    }

    public func has(_ key: String) -> Bool { table[key] != nil }

    private func value(_ key: String) throws(ConfigError) -> TOMLValue {
        read.insert(key)
        guard let v = table[key] else { throw ConfigError("\(source): missing key '\(name(key))'") }
        return v
    }

    public func string(_ key: String) throws(ConfigError) -> String {
        let v = try value(key)
        guard case .string(let s) = v else { throw wrongType(key, "a string", v) }
        return s
    }

    public func string(_ key: String, default d: String) throws(ConfigError) -> String {
        has(key) ? try string(key) : d
    }

    public func bool(_ key: String, default d: Bool) throws(ConfigError) -> Bool {
        guard has(key) else { return d }
        let v = try value(key)
        guard case .boolean(let b) = v else { throw wrongType(key, "true or false", v) }
        return b
    }

    public func int(_ key: String) throws(ConfigError) -> Int {
        let v = try value(key)
        guard case .integer(let n) = v else { throw wrongType(key, "an integer", v) }
        return Int(n)
    }

    public func int(_ key: String, default d: Int) throws(ConfigError) -> Int { has(key) ? try int(key) : d }

    /// A number; integers are accepted where a float is expected.
    public func double(_ key: String) throws(ConfigError) -> Double {
        let v = try value(key)
        switch v {
        case .float(let x): return x
        case .integer(let n): return Double(n)
        default: throw wrongType(key, "a number", v)
        }
    }

    public func double(_ key: String, default d: Double) throws(ConfigError) -> Double {
        has(key) ? try double(key) : d
    }

    public func ints(_ key: String) throws(ConfigError) -> [Int] {
        let v = try value(key)
        guard case .array(let items) = v else { throw wrongType(key, "an array of integers", v) }
        var out = [Int]()
        for item in items {
            guard case .integer(let n) = item else { throw wrongType(key, "an array of integers", item) }
            out.append(Int(n))
        }
        return out
    }

    public func strings(_ key: String) throws(ConfigError) -> [String] {
        let v = try value(key)
        guard case .array(let items) = v else { throw wrongType(key, "an array of strings", v) }
        var out = [String]()
        for item in items {
            guard case .string(let s) = item else { throw wrongType(key, "an array of strings", item) }
            out.append(s)
        }
        return out
    }

    /// One of `choices`, named in the error when the value is something else.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, as: T.Type, default d: T? = nil) throws(ConfigError) -> T where T.RawValue == String {
        if !has(key), let d { return d }
        let s = try string(key)
        guard let v = T(rawValue: s) else {
            let options = T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw ConfigError("\(at(key)): key '\(name(key))' must be one of \(options), got '\(s)'")
        }
        return v
    }

    public func section(_ key: String) throws(ConfigError) -> ConfigSection {
        let v = try value(key)
        guard case .table(let t) = v else { throw wrongType(key, "a table", v) }
        return ConfigSection(table: t, source: source, path: name(key))
    }

    public func optionalSection(_ key: String) throws(ConfigError) -> ConfigSection? {
        has(key) ? try section(key) : nil
    }

    /// A failure about a key that exists but holds a value the program cannot use.
    public func invalid(_ key: String, _ why: String) -> ConfigError {
        ConfigError("\(at(key)): key '\(name(key))' \(why)")
    }

    /// Throws for keys in this table that no getter asked for.
    public func rejectUnknownKeys() throws(ConfigError) {
        if let extra = table.order.first(where: { !read.contains($0) }) {
            throw ConfigError("\(at(extra)): unknown key '\(name(extra))'")
        }
    }
}
