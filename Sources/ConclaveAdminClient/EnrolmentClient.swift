public import ConclaveConfig
public import ConclaveIdentity
import ConclaveWire
import Crypto
import Foundation
import GRPCCore
import SwiftASN1
import SwiftProtobuf
public import X509

/// The enrolling side, shared by `conclave-client enroll` and `conclave user enroll`: a fresh P-256 key made
/// here (it never leaves this machine), a CSR, the bundle's one-time token, and the certificate stored.
public enum EnrolmentClient {
    /// A silo's proof that it holds its Ed25519 identity key: the key and its signature over the statement.
    public typealias Prover = @Sendable (_ statement: [UInt8]) -> (publicKey: [UInt8], signature: [UInt8])

    public static func enroll(bundle: EnrolmentBundle, into directory: IdentityDirectory,
                              prover: Prover?) async throws -> (identity: PeerIdentity, certificate: Certificate) {
        let key = P256.Signing.PrivateKey()
        let csr = try FederationCA.makeCSR(name: bundle.name, key: key)
        let request = Conclave_V1_EnrollRequest.with {
            $0.token = bundle.token
            $0.csrDer = Data(csr)
            if let prover {
                let proof = prover(EnrolmentBundle.proofStatement(csrDER: csr))
                $0.identityKey = Data(proof.publicKey)
                $0.identitySignature = Data(proof.signature)
            }
        }
        let reply = try await AdminClient.enroll(bundle, request)
        return try store(reply, key: key, caPEM: bundle.caPEM, into: directory)
    }

    /// Renewal over mutual TLS with the current certificate: a fresh key, the same identity.
    public static func renew(address: HostPort, directory: IdentityDirectory) async throws -> Certificate {
        let current = try directory.identity()
        let key = P256.Signing.PrivateKey()
        let csr = try FederationCA.makeCSR(name: current.name, key: key)
        let reply = try await AdminClient.withIdentity(address, identity: directory) { client in
            try await client.renew(.with { $0.csrDer = Data(csr) })
        }
        return try store(reply, key: key, caPEM: try directory.caPEM(), into: directory).certificate
    }

    static func store(_ reply: Conclave_V1_EnrollReply, key: P256.Signing.PrivateKey, caPEM: String,
                      into directory: IdentityDirectory) throws -> (identity: PeerIdentity, certificate: Certificate) {
        let certificate = try Certificate(derEncoded: Array(reply.certificateDer))
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw IdentityError("the coordinator returned a certificate for another key")
        }
        guard let identity = PeerIdentity(certificate: certificate) else {
            throw IdentityError("the coordinator returned a certificate without a Conclave identity")
        }
        try directory.store(certificate: certificate, key: key, caPEM: caPEM)
        return (identity, certificate)
    }
}
