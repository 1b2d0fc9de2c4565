import Foundation

/// Typed, checked access to one table of a configuration file. Every error names the file, the key (with
/// its table) and, where the key exists, its line; keys nobody read are reported as unknown (typos).
public final class ConfigSection {
    public let source: String
    public let path: String
    private let table: TOMLTable
    private var read: Set<String> = []
    /// Every key the program asked about (read or tested for), to suggest for a typo.
    private var asked: Set<String> = []

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

    public func has(_ key: String) -> Bool {
        asked.insert(key)
        return table[key] != nil
    }

    private func value(_ key: String) throws(ConfigError) -> TOMLValue {
        read.insert(key)
        asked.insert(key)
        guard let v = table[key] else {
            // A missing key next to an unknown one that looks like it is a typo: say that, at the typo's line.
            if let typo = table.order.first(where: { !read.contains($0) && Self.distance($0, key) <= 2 }) {
                throw ConfigError("\(at(typo)): unknown key '\(name(typo))' (did you mean '\(name(key))'?)")
            }
            throw ConfigError("\(source): missing key '\(name(key))'")
        }
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

    /// A failure found after parsing (a range or a combination of values) whose message names its keys: the
    /// error is placed at the line of the first key it names (this table's, or a subtable's as `table.key`).
    public func located(_ message: String) -> ConfigError {
        var best: (name: String, line: Int)?
        func scan(_ t: TOMLTable, prefix: String) {
            for key in t.order {
                let full = prefix.isEmpty ? key : "\(prefix).\(key)"
                if case .table(let sub)? = t[key] {
                    // A message about the table as a whole ("privacy needs …") points at its header.
                    if best == nil, let line = t.lines[key], Self.mentions(message, key) { best = (key, line) }
                    scan(sub, prefix: full)
                    continue
                }
                guard let line = t.lines[key] else { continue }
                for candidate in [full, key] where Self.mentions(message, candidate) {
                    if best == nil || candidate.count > best!.name.count { best = (candidate, line) }
                }
            }
        }
        scan(table, prefix: path)
        if let best { return ConfigError("\(source):\(best.line): \(message)") }
        return ConfigError("\(source): \(message)")
    }

    /// Whether `message` names `key` as a whole word (not inside a longer key).
    static func mentions(_ message: String, _ key: String) -> Bool {
        var rest = message[...]
        while let r = rest.range(of: key) {
            let before = r.lowerBound == message.startIndex ? nil : message[message.index(before: r.lowerBound)]
            let after = r.upperBound == message.endIndex ? nil : message[r.upperBound]
            let clearBefore = before.map { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") } ?? true
            let clearAfter = after.map { !($0.isLetter || $0.isNumber || $0 == "_") } ?? true
            if clearBefore, clearAfter { return true }
            rest = message[r.upperBound...]
        }
        return false
    }

    /// Throws for keys in this table that no getter asked for.
    public func rejectUnknownKeys() throws(ConfigError) {
        guard let extra = table.order.first(where: { !read.contains($0) }) else { return }
        let near = asked.subtracting(table.order).map { (key: $0, d: Self.distance($0, extra)) }
            .filter { $0.d <= max(2, extra.count / 3) || $0.key.hasPrefix(extra) }.min { ($0.d, $0.key) < ($1.d, $1.key) }
        let hint = near.map { " (did you mean '\(name($0.key))'?)" } ?? ""
        throw ConfigError("\(at(extra)): unknown key '\(name(extra))'\(hint)")
    }

    /// Levenshtein distance, for typo suggestions.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}
