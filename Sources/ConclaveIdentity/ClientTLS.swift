public import GRPCNIOTransportHTTP2

/// How a Conclave client (agent, CLI) secures its connection to the coordinator.
public enum ClientTLS {
    /// Mutual TLS with the identity's certificate and key; only the federation CA is trusted (never the
    /// system roots), and the server must hold a serverAuth certificate from it — the coordinator's. Host
    /// names are not checked: the federation CA is the only issuer, and addresses change.
    public static func mutual(_ identity: IdentityDirectory) -> HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [.file(path: identity.certificatePath, format: .pem)],
              privateKey: .file(path: identity.keyPath, format: .pem)) { tls in
            tls.trustRoots = .certificates([.file(path: identity.caPath, format: .pem)])
            tls.serverCertificateVerification = .noHostnameVerification
        }
    }

    /// Server-authenticated TLS pinned to a CA (enrolment: the caller has no certificate yet).
    public static func pinned(caPEM: String) -> HTTP2ClientTransport.Posix.TransportSecurity {
        .tls { tls in
            tls.trustRoots = .certificates([.bytes(Array(caPEM.utf8), format: .pem)])
            tls.serverCertificateVerification = .noHostnameVerification
        }
    }
}
