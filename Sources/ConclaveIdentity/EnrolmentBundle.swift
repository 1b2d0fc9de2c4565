public import Foundation

/// What the operator hands a silo operator (or a new user) to enrol: where to reach the coordinator, the CA to
/// pin, and a one-time token. No keys: the enrolling party makes its own.
public struct EnrolmentBundle: Codable, Sendable, Equatable {
    public var federation: String
    /// The coordinator's main (mutual TLS) address, host:port.
    public var coordinator: String
    /// Its enrolment listener, host:port.
    public var enrolment: String
    public var role: String
    public var name: String
    public var token: String
    public var tokenExpiresAt: Double
    public var caPEM: String

    enum CodingKeys: String, CodingKey {
        case federation, coordinator, enrolment, role, name, token
        case tokenExpiresAt = "token_expires_at"
        case caPEM = "ca_pem"
    }

    public init(federation: String, coordinator: String, enrolment: String, role: String, name: String, token: String,
                tokenExpiresAt: Double, caPEM: String) {
        self.federation = federation
        self.coordinator = coordinator
        self.enrolment = enrolment
        self.role = role
        self.name = name
        self.token = token
        self.tokenExpiresAt = tokenExpiresAt
        self.caPEM = caPEM
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public static func read(path: String) throws(IdentityError) -> EnrolmentBundle {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw IdentityError("cannot read the enrolment bundle \(path): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(EnrolmentBundle.self, from: data) } catch {
            throw IdentityError("\(path) is not an enrolment bundle (made by 'conclave silo add' or 'conclave user add'): \(error)")
        }
    }

    /// The statement a silo signs with its Ed25519 identity key to prove, at enrolment, that it holds it.
    public static func proofStatement(csrDER: [UInt8]) -> [UInt8] {
        Array("conclave-enrol-v1\n".utf8) + csrDER
    }
}
