public import Crypto
public import Foundation
import SwiftASN1
public import X509

/// The federation's certificate authority: a P-256 key and a self-signed certificate whose SAN URI
/// (`spiffe://<federation>`) names the federation. It issues every certificate in the federation, each with
/// the identity the CA chose as its only SAN URI.
public struct FederationCA: Sendable {
    public let federation: String
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// Ten years: the CA outlives every certificate it issues; rollover (several roots) is not built yet.
    public static let lifetime: TimeInterval = 10 * 365 * 86_400
    /// Issued certificates: 30 days unless configured otherwise; renewed after two-thirds of it.
    public static let defaultCertificateLifetime: TimeInterval = 30 * 86_400
    /// Clock skew tolerated between the CA and its peers (a tenth of the lifetime for short-lived
    /// certificates, so that renewal at two-thirds of the validity stays meaningful).
    static let backdate: TimeInterval = 300

    /// A new CA for `federation`.
    public static func create(federation: String, now: Date = Date()) throws(IdentityError) -> FederationCA {
        guard PeerIdentity.isValidName(federation) else {
            throw IdentityError("federation name '\(federation)' must be 1–128 letters, digits, '-', '_' or '.'")
        }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let name = try DistinguishedName {
                CommonName("Conclave federation \(federation) CA")
                OrganizationName(federation)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now - backdate, notValidAfter: now + lifetime, issuer: name, subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                    SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(federation)")])
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
            return FederationCA(federation: federation, certificate: certificate, key: key)
        } catch {
            throw IdentityError("cannot create the federation CA: \(error)")
        }
    }

    /// Loads a CA from its certificate and key (PEM).
    public init(certificatePEM: String, keyPEM: String) throws(IdentityError) {
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
            key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        } catch {
            throw IdentityError("cannot read the federation CA: \(error)")
        }
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw IdentityError("the CA key does not belong to the CA certificate")
        }
        guard let federation = Self.federation(of: certificate) else {
            throw IdentityError("the CA certificate carries no spiffe://<federation> URI; was it made by 'conclave ca init'?")
        }
        self.federation = federation
    }

    init(federation: String, certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.federation = federation
        self.certificate = certificate
        self.key = key
    }

    /// The federation a CA certificate names in its SAN URI.
    public static func federation(of certificate: Certificate) -> String? {
        guard let sans = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for case .uniformResourceIdentifier(let uri) in sans where uri.hasPrefix("spiffe://") {
            let name = String(uri.dropFirst("spiffe://".count))
            if PeerIdentity.isValidName(name) { return name }
        }
        return nil
    }

    public var keyPEM: String { key.pemRepresentation }

    /// Issues a certificate for `identity` to `publicKey` (P-256 only). Subject and SAN are the CA's choice;
    /// the coordinator's certificate also names the hosts agents dial (DNS names or IP addresses).
    public func issue(publicKey: Certificate.PublicKey, for identity: PeerIdentity, lifetime: TimeInterval,
                      hosts: [String] = [], now: Date = Date()) throws(IdentityError) -> Certificate {
        guard identity.federation == federation else {
            throw IdentityError("identity \(identity) is not in federation '\(federation)'")
        }
        guard P256.Signing.PublicKey(publicKey) != nil else { throw IdentityError("only P-256 keys are certified") }
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.uri)]
        for host in hosts {
            if let ip = IPv4Address(host) { names.append(.ipAddress(ASN1OctetString(contentBytes: ip.bytes[...]))) }
            else { names.append(.dnsName(host)) }
        }
        do {
            let subject = try DistinguishedName {
                CommonName(identity.name)
                OrganizationalUnitName(identity.role.rawValue)
                OrganizationName(federation)
            }
            let usage: ExtendedKeyUsage.Usage = identity.role == .coordinator ? .serverAuth : .clientAuth
            let caKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            return try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now - min(Self.backdate, lifetime / 10), notValidAfter: now + lifetime,
                issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([usage])
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: caKeyID)
                    SubjectAlternativeNames(names)
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
        } catch {
            throw IdentityError("cannot issue a certificate for \(identity): \(error)")
        }
    }

    /// Checks a CSR from a peer: it parses, its key is P-256, its self-signature verifies (the requester holds
    /// the key) and its subject's common name is `name`. Returns the key to certify.
    public static func checkedKey(csrDER: [UInt8], name: String) throws(IdentityError) -> Certificate.PublicKey {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(derEncoded: csrDER) } catch {
            throw IdentityError("the certificate signing request is not DER PKCS#10: \(error)")
        }
        guard P256.Signing.PublicKey(csr.publicKey) != nil else {
            throw IdentityError("the certificate signing request's key is not P-256 (the only key type certified)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw IdentityError("the certificate signing request's signature does not verify with its own key")
        }
        let commonNames = csr.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String(describing: $0.value) }
        guard commonNames == [name] else {
            // The names come from the peer: shown cut and escaped, never raw.
            let asked = String(commonNames.joined(separator: ",").prefix(48)).debugDescription
            throw IdentityError("the certificate signing request asks for \(asked), but its token is for '\(name)'")
        }
        return csr.publicKey
    }

    /// A CSR for a new P-256 key, subject CN = `name`: what an agent or user sends to enrol or renew.
    public static func makeCSR(name: String, key: P256.Signing.PrivateKey) throws(IdentityError) -> [UInt8] {
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(name) },
                privateKey: Certificate.PrivateKey(key), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
            var serializer = DER.Serializer()
            try serializer.serialize(csr)
            return serializer.serializedBytes
        } catch {
            throw IdentityError("cannot make a certificate signing request: \(error)")
        }
    }
}

/// Dotted-quad IPv4 text to bytes (SAN ipAddress).
struct IPv4Address {
    let bytes: [UInt8]
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes = [UInt8]()
        for part in parts {
            guard let b = UInt8(part) else { return nil }
            bytes.append(b)
        }
        self.bytes = bytes
    }
}

extension Certificate {
    /// DER bytes of the certificate.
    public var derBytes: [UInt8] {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(self)
            return serializer.serializedBytes
        }
    }

    /// The serial number as lower-case hex.
    public var serialHex: String {
        serialNumber.bytes.map { String(format: "%02x", $0) }.joined()
    }
}
