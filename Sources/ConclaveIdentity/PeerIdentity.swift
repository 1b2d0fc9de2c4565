public import X509

/// Who is on the other end of a connection: the one SAN URI the federation CA put in its certificate,
/// `spiffe://<federation>/<role>/<name>`. Never taken from anything the peer chose.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public enum Role: String, Sendable, CaseIterable {
        case silo
        case `operator`
        case privacyOfficer = "privacy-officer"
        case coordinator
    }

    public let federation: String
    public let role: Role
    /// The silo id or user name (`coordinator` for the coordinator).
    public let name: String

    public init(federation: String, role: Role, name: String) {
        self.federation = federation
        self.role = role
        self.name = name
    }

    public var uri: String {
        role == .coordinator ? "spiffe://\(federation)/coordinator" : "spiffe://\(federation)/\(role.rawValue)/\(name)"
    }

    public var description: String { uri }

    /// Parses a Conclave SAN URI; nil for anything else.
    public init?(uri: String) {
        guard uri.hasPrefix("spiffe://") else { return nil }
        let parts = uri.dropFirst("spiffe://".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let federation = parts.first, Self.isValidName(federation) else { return nil }
        if parts.count == 2, parts[1] == "coordinator" {
            self.init(federation: federation, role: .coordinator, name: "coordinator")
            return
        }
        guard parts.count == 3, let role = Role(rawValue: parts[1]), role != .coordinator, Self.isValidName(parts[2]) else {
            return nil
        }
        self.init(federation: federation, role: role, name: parts[2])
    }

    /// The identity in a certificate: its single Conclave SAN URI (nil when it has none, or several).
    public init?(certificate: Certificate) {
        guard let sans = try? certificate.extensions.subjectAlternativeNames else { return nil }
        var found: PeerIdentity?
        for name in sans {
            guard case .uniformResourceIdentifier(let uri) = name, let identity = PeerIdentity(uri: uri) else { continue }
            guard found == nil else { return nil }
            found = identity
        }
        guard let found else { return nil }
        self = found
    }

    /// Names (federation, silo ids, user names): 1–128 bytes of ASCII letters, digits, '-', '_', '.'.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...128).contains(bytes.count) && bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
        } && name != "." && name != ".."
    }
}
