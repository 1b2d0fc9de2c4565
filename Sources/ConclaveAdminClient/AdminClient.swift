public import ConclaveConfig
public import ConclaveIdentity
public import ConclaveWire
import GRPCCore
public import GRPCNIOTransportHTTP2

/// Calls the coordinator's Admin and Identity services for the CLI: over mutual TLS with the operator's (or
/// privacy officer's) identity when one is given, in plaintext otherwise (a coordinator with `insecure = true`).
public enum AdminClient {
    static func transport(_ address: HostPort, _ identity: IdentityDirectory?) throws -> HTTP2ClientTransport.Posix {
        try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port),
                                       transportSecurity: identity.map(ClientTLS.mutual) ?? .plaintext)
    }

    /// One connection to the coordinator's main port, as the caller's identity, wrapped as the service's client.
    static func connected<T: Sendable, Service: Sendable>(
        _ address: HostPort, _ identity: IdentityDirectory?,
        _ wrap: @Sendable @escaping (GRPCClient<HTTP2ClientTransport.Posix>) -> Service,
        _ body: @Sendable @escaping (Service) async throws -> T
    ) async throws -> T {
        try await withGRPCClient(transport: try transport(address, identity)) { client in try await body(wrap(client)) }
    }

    public static func with<T: Sendable>(
        _ address: HostPort, identity: IdentityDirectory? = nil,
        _ body: @Sendable @escaping (Conclave_V1_Admin.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await connected(address, identity, { Conclave_V1_Admin.Client(wrapping: $0) }, body)
    }

    public static func withIdentity<T: Sendable>(
        _ address: HostPort, identity: IdentityDirectory?,
        _ body: @Sendable @escaping (Conclave_V1_Identity.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await connected(address, identity, { Conclave_V1_Identity.Client(wrapping: $0) }, body)
    }

    public static func withBudget<T: Sendable>(
        _ address: HostPort, identity: IdentityDirectory?,
        _ body: @Sendable @escaping (Conclave_V1_Budget.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await connected(address, identity, { Conclave_V1_Budget.Client(wrapping: $0) }, body)
    }

    /// Enrolment, on the enrolment listener, pinned to the bundle's CA (the caller has no certificate yet).
    public static func enroll(_ bundle: EnrolmentBundle, _ request: Conclave_V1_EnrollRequest) async throws -> Conclave_V1_EnrollReply {
        let address = try HostPort(parsing: bundle.enrolment)
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port),
                                                       transportSecurity: ClientTLS.pinned(caPEM: bundle.caPEM))
        return try await withGRPCClient(transport: transport) { client in
            try await Conclave_V1_Enrollment.Client(wrapping: client).enroll(request)
        }
    }
}

/// The client transport the CLI talks over, named for code that does not import the transport module.
public typealias HTTP2ClientTransportPosix = HTTP2ClientTransport.Posix
