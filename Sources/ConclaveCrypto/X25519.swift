import CSodium

/// X25519 key agreement (libsodium), for the per-round mask keys of secure aggregation.
public struct X25519KeyPair: Sendable {
    public let publicKey: [UInt8]
    let secretKey: SecretBytes

    /// A fresh key pair from libsodium's CSPRNG.
    public init() {
        Sodium.ensureReady()
        let secret = SecretBytes(random: Int(crypto_scalarmult_SCALARBYTES))
        var pk = [UInt8](repeating: 0, count: Int(crypto_scalarmult_BYTES))
        secret.withBytes { sk in _ = crypto_scalarmult_base(&pk, sk.baseAddress!) }
        publicKey = pk
        secretKey = secret
    }

    /// Rebuilds a key pair from its 32-byte secret (e.g. one reconstructed from Shamir shares).
    public init(secretKey bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Int(crypto_scalarmult_SCALARBYTES) else {
            throw CryptoError("an X25519 secret key is 32 bytes, got \(bytes.count)")
        }
        Sodium.ensureReady()
        let secret = SecretBytes(bytes)
        var pk = [UInt8](repeating: 0, count: Int(crypto_scalarmult_BYTES))
        secret.withBytes { sk in _ = crypto_scalarmult_base(&pk, sk.baseAddress!) }
        publicKey = pk
        secretKey = secret
    }

    /// The secret key's bytes, for sharing it (Shamir) when the protocol requires it.
    public var secretKeyBytes: [UInt8] { secretKey.bytes }

    /// The raw shared secret with `peer`. A low-order (e.g. all-zero) peer key makes libsodium refuse:
    /// that peer is refused, never silently given a predictable secret.
    public func sharedSecret(with peer: [UInt8]) throws(CryptoError) -> SecretBytes {
        guard peer.count == Int(crypto_scalarmult_BYTES) else {
            throw CryptoError("an X25519 public key is 32 bytes, got \(peer.count)")
        }
        var out = [UInt8](repeating: 0, count: Int(crypto_scalarmult_BYTES))
        let status = secretKey.withBytes { sk in crypto_scalarmult(&out, sk.baseAddress!, peer) }
        guard status == 0 else { throw CryptoError("peer public key is of low order; refusing it") }
        return SecretBytes(out)
    }
}

/// Secret bytes that are wiped when the last copy goes away.
public final class SecretBytes: @unchecked Sendable {
    private var storage: [UInt8]

    public init(_ bytes: [UInt8]) { storage = bytes }

    public convenience init(random count: Int) { self.init(SecureRandom.bytes(count)) }

    deinit {
        storage.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
    }

    public var count: Int { storage.count }
    public var bytes: [UInt8] { storage }

    public func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try storage.withUnsafeBufferPointer(body)
    }
}
