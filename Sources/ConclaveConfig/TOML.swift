/// A TOML value with the line it was written on, so configuration errors can point at it.
public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

public struct TOMLTable: Sendable, Equatable {
    public var entries: [String: TOMLValue] = [:]
    /// Line of each key's definition (1-based).
    public var lines: [String: Int] = [:]
    /// Keys in the order they were written.
    public var order: [String] = []
    public init() {}

    public subscript(key: String) -> TOMLValue? { entries[key] }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if entries[key] == nil { order.append(key) }
        entries[key] = value
        lines[key] = line
    }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A parser for the TOML the configuration files use (TOML 1.0 minus dates and arrays of tables):
/// tables, dotted keys, basic and literal strings, integers, floats, booleans, arrays and inline tables.
public struct TOMLParser {
    private let source: String
    private var chars: [Character]
    private var i = 0
    private var line = 1

    public static func parse(_ text: String, source: String = "<toml>") throws(ConfigError) -> TOMLTable {
        var p = TOMLParser(source: source, chars: Array(text))
        return try p.document()
    }

    private init(source: String, chars: [Character]) {
        self.source = source
        self.chars = chars
    }

    private func fail(_ message: String) -> ConfigError { ConfigError("\(source):\(line): \(message)") }
    private var atEnd: Bool { i >= chars.count }
    private var peek: Character? { atEnd ? nil : chars[i] }

    private mutating func skipSpaces() {
        while let c = peek, c == " " || c == "\t" { i += 1 }
    }

    private mutating func skipComment() {
        if peek == "#" { while let c = peek, c != "\n" { i += 1 } }
    }

    /// Skips whitespace, newlines and comments (inside arrays).
    private mutating func skipBlank() {
        while let c = peek {
            if c == " " || c == "\t" || c == "\r" { i += 1 } else if c == "\n" { i += 1; line += 1 } else if c == "#" { skipComment() } else { break }
        }
    }

    private mutating func endOfLine() throws(ConfigError) {
        skipSpaces()
        skipComment()
        if peek == "\r" { i += 1 }
        guard atEnd || peek == "\n" else { throw fail("unexpected '\(peek!)' after value") }
    }

    private mutating func document() throws(ConfigError) -> TOMLTable {
        var root = TOMLTable()
        var current: [String] = []
        while !atEnd {
            skipSpaces()
            guard let c = peek else { break }
            if c == "\n" { i += 1; line += 1; continue }
            if c == "#" || c == "\r" { skipComment(); if peek == "\r" { i += 1 }; continue }
            if c == "[" {
                i += 1
                if peek == "[" { throw fail("arrays of tables ([[...]]) are not supported") }
                skipSpaces()
                let path = try keyPath()
                skipSpaces()
                guard peek == "]" else { throw fail("expected ']' to close the table header") }
                i += 1
                try endOfLine()
                try create(path, in: &root)
                current = path
                continue
            }
            let path = try keyPath()
            skipSpaces()
            guard peek == "=" else { throw fail("expected '=' after key '\(path.joined(separator: "."))'") }
            i += 1
            skipSpaces()
            let keyLine = line
            let value = try value()
            try endOfLine()
            try insert(current + path, value, line: keyLine, in: &root)
        }
        return root
    }

    private mutating func create(_ path: [String], in root: inout TOMLTable) throws(ConfigError) {
        guard let head = path.first else { return }
        var child: TOMLTable
        switch root[head] {
        case .none: child = TOMLTable()
        case .table(let t): child = t
        case .some: throw fail("'\(head)' is already a value, not a table")
        }
        try create(Array(path.dropFirst()), in: &child)
        root.set(head, .table(child), line: root.lines[head] ?? line)
    }

    private mutating func insert(_ path: [String], _ value: TOMLValue, line keyLine: Int,
                                 in table: inout TOMLTable) throws(ConfigError) {
        let head = path[0]
        if path.count == 1 {
            guard table[head] == nil else { throw fail("key '\(head)' is defined twice") }
            table.set(head, value, line: keyLine)
            return
        }
        var child: TOMLTable
        switch table[head] {
        case .none: child = TOMLTable()
        case .table(let t): child = t
        case .some: throw fail("'\(head)' is already a value, not a table")
        }
        try insert(Array(path.dropFirst()), value, line: keyLine, in: &child)
        table.set(head, .table(child), line: table.lines[head] ?? keyLine)
    }

    private mutating func keyPath() throws(ConfigError) -> [String] {
        var parts = [try key()]
        skipSpaces()
        while peek == "." {
            i += 1
            skipSpaces()
            parts.append(try key())
            skipSpaces()
        }
        return parts
    }

    private mutating func key() throws(ConfigError) -> String {
        if peek == "\"" { return try basicString() }
        if peek == "'" { return try literalString() }
        var s = ""
        while let c = peek, c.isLetter || c.isNumber || c == "_" || c == "-" { s.append(c); i += 1 }
        guard !s.isEmpty else { throw fail(peek.map { "unexpected '\($0)' where a key was expected" } ?? "expected a key") }
        return s
    }

    private mutating func value() throws(ConfigError) -> TOMLValue {
        guard let c = peek, c != "\n" else { throw fail("missing value after '='") }
        switch c {
        case "\"": return .string(try basicString())
        case "'": return .string(try literalString())
        case "[": return try array()
        case "{": return try inlineTable()
        default: return try scalar()
        }
    }

    private mutating func basicString() throws(ConfigError) -> String {
        i += 1
        var s = ""
        while true {
            guard let c = peek, c != "\n" else { throw fail("unterminated string") }
            i += 1
            if c == "\"" { return s }
            if c != "\\" { s.append(c); continue }
            guard let e = peek else { throw fail("unterminated string") }
            i += 1
            switch e {
            case "n": s.append("\n")
            case "t": s.append("\t")
            case "r": s.append("\r")
            case "\\": s.append("\\")
            case "\"": s.append("\"")
            case "u", "U":
                let n = e == "u" ? 4 : 8
                guard i + n <= chars.count, let code = UInt32(String(chars[i..<(i + n)]), radix: 16),
                      let scalar = Unicode.Scalar(code) else { throw fail("bad unicode escape") }
                s.unicodeScalars.append(scalar)
                i += n
            default: throw fail("unknown escape '\\\(e)' in string")
            }
        }
    }

    private mutating func literalString() throws(ConfigError) -> String {
        i += 1
        var s = ""
        while true {
            guard let c = peek, c != "\n" else { throw fail("unterminated string") }
            i += 1
            if c == "'" { return s }
            s.append(c)
        }
    }

    private mutating func array() throws(ConfigError) -> TOMLValue {
        i += 1
        var items = [TOMLValue]()
        while true {
            skipBlank()
            if peek == "]" { i += 1; return .array(items) }
            items.append(try value())
            skipBlank()
            if peek == "," { i += 1; continue }
            if peek == "]" { i += 1; return .array(items) }
            throw fail("expected ',' or ']' in array")
        }
    }

    private mutating func inlineTable() throws(ConfigError) -> TOMLValue {
        i += 1
        var table = TOMLTable()
        skipSpaces()
        if peek == "}" { i += 1; return .table(table) }
        while true {
            skipSpaces()
            let path = try keyPath()
            skipSpaces()
            guard peek == "=" else { throw fail("expected '=' in inline table") }
            i += 1
            skipSpaces()
            try insert(path, try value(), line: line, in: &table)
            skipSpaces()
            if peek == "," { i += 1; continue }
            if peek == "}" { i += 1; return .table(table) }
            throw fail("expected ',' or '}' in inline table")
        }
    }

    private mutating func scalar() throws(ConfigError) -> TOMLValue {
        var s = ""
        while let c = peek, !(c == "," || c == "]" || c == "}" || c == "#" || c == "\n" || c == " " || c == "\t" || c == "\r") {
            s.append(c)
            i += 1
        }
        switch s {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        let plain = s.filter { $0 != "_" }
        if let v = Int64(plain) { return .integer(v) }
        if plain.hasPrefix("0x"), let v = Int64(plain.dropFirst(2), radix: 16) { return .integer(v) }
        if plain.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let v = Double(plain) { return .float(v) }
        throw fail(s.isEmpty ? "missing value" : "'\(s)' is not a valid value (strings need quotes)")
    }
}
