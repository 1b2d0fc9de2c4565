public import ConclaveConfig
public import ConclaveWire
import GRPCCore
public import GRPCNIOTransportHTTP2

/// Calls the coordinator's Admin service for the CLI.
public enum AdminClient {
    public static func with<T: Sendable>(
        _ address: HostPort, _ body: @Sendable @escaping (Conclave_V1_Admin.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port),
                                                       transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { client in
            try await body(Conclave_V1_Admin.Client(wrapping: client))
        }
    }
}

/// The client transport the CLI talks over, named for code that does not import the transport module.
public typealias HTTP2ClientTransportPosix = HTTP2ClientTransport.Posix
