import CSodium

/// Ed25519 signatures (libsodium): a silo's long-term identity signs its per-round keys and survivor lists.
public struct Ed25519KeyPair: Sendable {
    public let publicKey: [UInt8]
    let secretKey: SecretBytes

    public init() {
        Sodium.ensureReady()
        var pk = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var sk = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        crypto_sign_keypair(&pk, &sk)
        publicKey = pk
        secretKey = SecretBytes(sk)
        sk.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
    }

    /// Rebuilds a key pair from its 32-byte seed: the form an identity key is stored in on disk.
    public init(seed: [UInt8]) throws(CryptoError) {
        Sodium.ensureReady()
        guard seed.count == Int(crypto_sign_SEEDBYTES) else {
            throw CryptoError("an Ed25519 seed is \(crypto_sign_SEEDBYTES) bytes, got \(seed.count)")
        }
        var pk = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var sk = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        crypto_sign_seed_keypair(&pk, &sk, seed)
        publicKey = pk
        secretKey = SecretBytes(sk)
        sk.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
    }

    /// The 32-byte seed the key pair can be rebuilt from. Secret: write it only to a file only its owner reads.
    public var seed: [UInt8] {
        var seed = [UInt8](repeating: 0, count: Int(crypto_sign_SEEDBYTES))
        secretKey.withBytes { sk in _ = crypto_sign_ed25519_sk_to_seed(&seed, sk.baseAddress!) }
        return seed
    }

    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        secretKey.withBytes { sk in
            _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count), sk.baseAddress!)
        }
        return signature
    }
}

public enum Ed25519 {
    /// True only for a valid signature of `message` by `publicKey`.
    public static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        Sodium.ensureReady()
        guard signature.count == Int(crypto_sign_BYTES), publicKey.count == Int(crypto_sign_PUBLICKEYBYTES) else {
            return false
        }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }
}
