import ConclaveIdentity
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import SwiftASN1
import X509

/// What the coordinator trusts, swapped atomically: the federation CA, and the serials and identities
/// revoked. Checked in the TLS handshake (the transport's custom verification callback, so revocation takes
/// effect for the next handshake without a restart) and again on every RPC (a resumed TLS session skips the
/// callback).
final class TrustStore: Sendable {
    struct Snapshot: Sendable {
        var ca: Certificate
        var federation: String
        var revokedSerials: Set<String>
        /// "role/name"
        var revokedIdentities: Set<String>

        /// The one revocation rule, for the handshake and for every RPC.
        func isRevoked(_ identity: PeerIdentity, serials: [String]) -> Bool {
            serials.contains(where: revokedSerials.contains) || revokedIdentities.contains("\(identity.role.rawValue)/\(identity.name)")
        }
    }

    private let state: Mutex<Snapshot>

    init(ca: Certificate, federation: String, revokedSerials: Set<String>, revokedIdentities: Set<String>) {
        state = Mutex(Snapshot(ca: ca, federation: federation, revokedSerials: revokedSerials, revokedIdentities: revokedIdentities))
    }

    var snapshot: Snapshot { state.withLock { $0 } }

    func revoke(serials: [String], identity: PeerIdentity) {
        state.withLock {
            $0.revokedSerials.formUnion(serials)
            $0.revokedIdentities.insert("\(identity.role.rawValue)/\(identity.name)")
        }
    }

    /// Why a presented leaf may not speak (nil: it may): checked on every RPC.
    func refusal(of leaf: Certificate, now: Date = Date()) -> String? {
        let s = snapshot
        guard let identity = PeerIdentity(certificate: leaf), identity.federation == s.federation else {
            return "the certificate carries no identity of federation '\(s.federation)'"
        }
        if s.isRevoked(identity, serials: [leaf.serialHex]) {
            return "the certificate of \(identity) is revoked"
        }
        if now > leaf.notValidAfter { return "the certificate of \(identity) expired at \(leaf.notValidAfter)" }
        return nil
    }

    /// The main listener's verification callback: the chain must lead to the federation CA (never the system
    /// roots), be valid now, carry clientAuth and one Conclave identity, and be neither revoked nor the
    /// coordinator's own.
    func verify(_ presented: [NIOSSLCertificate], _ promise: EventLoopPromise<NIOSSLVerificationResultWithMetadata>) {
        let s = snapshot
        promise.completeWithTask {
            let chain = try presented.map { try Certificate(derEncoded: try $0.toDERBytes()) }
            guard let leaf = chain.first else { return .failed }
            var verifier = Verifier(rootCertificates: CertificateStore([s.ca])) {
                RFC5280Policy(validationTime: Date())
                ConclavePeerPolicy(snapshot: s)
            }
            let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
            guard case .validCertificate(let validated) = result else { return .failed }
            let nio = try validated.map { try NIOSSLCertificate(bytes: try $0.derBytes, format: .der) }
            return .certificateVerified(VerificationMetadata(NIOSSL.ValidatedCertificateChain(nio)))
        }
    }
}

/// Conclave's own checks on a client chain: extended key usage clientAuth, exactly one identity of this
/// federation that is a silo or a person (never the coordinator), not revoked.
struct ConclavePeerPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = []
    let snapshot: TrustStore.Snapshot

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let leaf = chain.leaf
        guard let eku = try? leaf.extensions.extendedKeyUsage, eku.contains(.clientAuth) else {
            return .failsToMeetPolicy(reason: "the certificate is not for TLS clients (no clientAuth usage)")
        }
        guard let identity = PeerIdentity(certificate: leaf), identity.federation == snapshot.federation,
              identity.role != .coordinator else {
            return .failsToMeetPolicy(reason: "the certificate carries no client identity of this federation")
        }
        if snapshot.isRevoked(identity, serials: chain.map(\.serialHex)) {
            return .failsToMeetPolicy(reason: "revoked")
        }
        return .meetsPolicy
    }
}
