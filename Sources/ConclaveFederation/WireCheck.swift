/// Checks for values that arrive from the network, applied where they enter: before the database, the state
/// machine or a log line sees them. A refusal never echoes the value whole, only an escaped, truncated preview,
/// so a hostile peer cannot use error replies or the log as an amplifier.
public enum WireCheck {
    /// Longest silo id, run id or dataset name, in UTF-8 bytes.
    public static let maxNameBytes = 128
    /// Longest free-text field (a decline's detail, a reason), in UTF-8 bytes.
    public static let maxTextBytes = 512
    /// Largest example count a silo may claim (2⁴⁰, about 10¹²): far above any silo, far below Int64's range.
    public static let maxExamples: UInt64 = 1 << 40
    /// Largest feature count and class count a silo may claim.
    public static let maxFeatures: UInt32 = 1 << 24
    public static let maxClasses: UInt32 = 1 << 16

    /// A silo or run id: 1…128 bytes of letters, digits, '-', '_' and '.' (what silo.toml allows).
    @discardableResult
    public static func name(_ value: String, _ what: String) throws(FederationError) -> String {
        guard !value.isEmpty else { throw FederationError(.invalidArgument, "\(what) is empty") }
        guard value.utf8.count <= maxNameBytes else {
            throw FederationError(.invalidArgument,
                "\(what) is \(value.utf8.count) bytes long (at most \(maxNameBytes)): \(preview(value))")
        }
        guard value.unicodeScalars.allSatisfy(isNameScalar) else {
            throw FederationError(.invalidArgument,
                "\(what) may hold only letters, digits, '-', '_' and '.': \(preview(value))")
        }
        return value
    }

    /// Free text (a dataset name, a reason): at most `maxBytes`, printable, no control characters.
    @discardableResult
    public static func text(_ value: String, _ what: String, maxBytes: Int = maxTextBytes) throws(FederationError) -> String {
        guard value.utf8.count <= maxBytes else {
            throw FederationError(.invalidArgument,
                "\(what) is \(value.utf8.count) bytes long (at most \(maxBytes)): \(preview(value))")
        }
        guard !value.unicodeScalars.contains(where: isControl) else {
            throw FederationError(.invalidArgument, "\(what) holds control characters: \(preview(value))")
        }
        return value
    }

    /// An unsigned count checked against its range, as an `Int` that cannot trap later.
    public static func count(_ value: UInt64, _ what: String, max: UInt64) throws(FederationError) -> Int {
        guard value <= max else {
            throw FederationError(.invalidArgument, "\(what) is \(value), above the largest accepted (\(max))")
        }
        return Int(value)
    }

    /// A measurement (a loss, seconds): finite and within `range`.
    public static func finite(_ value: Double, _ what: String, in range: ClosedRange<Double>) throws(FederationError) -> Double {
        guard value.isFinite, range.contains(value) else {
            throw FederationError(.invalidArgument, "\(what) must be a finite number in \(range), got \(value)")
        }
        return value
    }

    /// A byte string of one of the accepted lengths.
    public static func bytes(_ count: Int, _ what: String, allowed: Set<Int>) throws(FederationError) {
        guard allowed.contains(count) else {
            let sizes = allowed.sorted().map(String.init).joined(separator: " or ")
            throw FederationError(.invalidArgument, "\(what) is \(count) bytes, not \(sizes)")
        }
    }

    /// A value shown safely: control characters, quotes and backslashes escaped, cut to `limit` characters.
    public static func preview(_ value: String, limit: Int = 48) -> String {
        var out = "'"
        var shown = 0
        for scalar in value.unicodeScalars {
            if shown == limit {
                out += "…' (\(value.utf8.count) bytes)"
                return out
            }
            out += escape(scalar)
            shown += 1
        }
        return out + "'"
    }

    /// Escapes what must never reach a log line raw: control characters (CR, ESC, NUL, …), quotes, backslashes.
    public static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\\": return "\\\\"
        case "\"": return "\\\""
        default:
            guard isControl(scalar) else { return String(scalar) }
            let hex = String(scalar.value, radix: 16)
            return "\\u{\(hex)}"
        }
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .unassigned, .privateUse: true
        default: false
        }
    }

    static func isNameScalar(_ s: Unicode.Scalar) -> Bool {
        if s == "-" || s == "_" || s == "." { return true }
        return s.properties.isAlphabetic || s.properties.numericType != nil
    }
}
