import ConclaveIdentity
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import X509

/// Who may call what. Silos call only Federation (and renew); operators run the federation; privacy officers
/// read everything; every identity may renew its own certificate.
enum Authorization {
    static func roles(for method: MethodDescriptor) -> Set<PeerIdentity.Role> {
        switch (method.service.fullyQualifiedService, method.method) {
        case ("conclave.v1.Federation", _): [.silo]
        case ("conclave.v1.Admin", "GetRun"), ("conclave.v1.Admin", "ListRuns"): [.operator, .privacyOfficer]
        case ("conclave.v1.Admin", _): [.operator]
        case ("conclave.v1.Identity", "Renew"): [.silo, .operator, .privacyOfficer]
        case ("conclave.v1.Identity", "ListIdentities"): [.operator, .privacyOfficer]
        case ("conclave.v1.Identity", _): [.operator]
        case ("conclave.v1.Budget", "Export"), ("conclave.v1.Budget", "Plan"): [.operator, .privacyOfficer]
        case ("conclave.v1.Budget", _): [.privacyOfficer]
        case ("conclave.v1.Witness", _): [.silo]
        default: []
        }
    }

    static func describe(_ roles: Set<PeerIdentity.Role>) -> String {
        let names = roles.map(\.rawValue).sorted()
        return names.isEmpty ? "no role" : "the role " + names.joined(separator: " or ")
    }
}

extension ServerContext {
    /// The leaf certificate the peer presented in the TLS handshake (nil over plaintext).
    var peerCertificate: Certificate? {
        (transportSpecific as? HTTP2ServerTransport.Posix.Context)?.peerCertificate
    }

    /// The peer's identity, from its certificate's SAN URI.
    var peerIdentity: PeerIdentity? { peerCertificate.flatMap { PeerIdentity(certificate: $0) } }
}

/// Every RPC on the main listener: the certificate must still be trusted (revocation is checked here too,
/// since a resumed TLS session skips the handshake's callback) and its role must fit the method. A refusal
/// names the role needed.
struct AuthorizationInterceptor: ServerInterceptor {
    let trust: TrustStore
    let contacts: ContactLog

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard let leaf = context.peerCertificate, let identity = PeerIdentity(certificate: leaf) else {
            throw RPCError(code: .unauthenticated, message: "no client certificate of this federation was presented")
        }
        if let why = trust.refusal(of: leaf) { throw RPCError(code: .unauthenticated, message: why) }
        let allowed = Authorization.roles(for: context.descriptor)
        guard allowed.contains(identity.role) else {
            throw RPCError(code: .permissionDenied, message:
                "\(context.descriptor.service.fullyQualifiedService)/\(context.descriptor.method) needs \(Authorization.describe(allowed)); "
                + "\(identity.name) has the role \(identity.role.rawValue)")
        }
        contacts.touch(identity)
        return try await next(request, context)
    }
}
