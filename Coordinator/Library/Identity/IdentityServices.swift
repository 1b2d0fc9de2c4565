import ConclaveIdentity
import ConclaveWire
import GRPCCore
import Logging

/// `Enrollment`, alone on the enrolment listener: the token authenticates the caller.
struct EnrollmentService: Conclave_V1_Enrollment.SimpleServiceProtocol {
    let authority: IdentityAuthority

    func enroll(request: Conclave_V1_EnrollRequest, context: ServerContext) async throws -> Conclave_V1_EnrollReply {
        do { return try authority.enroll(request) } catch {
            authority.logger.warning("enrolment refused", metadata: ["code": "\(error.code)", "error": "\(error.message)",
                                                                     "peer": "\(context.remotePeer)"])
            throw error
        }
    }
}

/// `Identity`, on the main listener behind the authorization interceptor (roles are checked there).
struct IdentityService: Conclave_V1_Identity.SimpleServiceProtocol {
    let authority: IdentityAuthority

    func renew(request: Conclave_V1_RenewRequest, context: ServerContext) async throws -> Conclave_V1_EnrollReply {
        guard let caller = context.peerIdentity else { throw RPCError(code: .unauthenticated, message: "no client certificate") }
        return try authority.renew(request, caller: caller)
    }

    func addIdentity(request: Conclave_V1_AddIdentityRequest, context: ServerContext) async throws -> Conclave_V1_AddIdentityReply {
        try authority.addIdentity(request)
    }

    func revokeIdentity(request: Conclave_V1_RevokeIdentityRequest, context: ServerContext) async throws -> Conclave_V1_RevokeIdentityReply {
        let reply = try authority.revoke(request)
        if request.role == PeerIdentity.Role.silo.rawValue { await authority.siloRevoked(request.name) }
        return reply
    }

    func listIdentities(request: Conclave_V1_ListIdentitiesRequest, context: ServerContext) async throws -> Conclave_V1_ListIdentitiesReply {
        try authority.list(request)
    }
}
