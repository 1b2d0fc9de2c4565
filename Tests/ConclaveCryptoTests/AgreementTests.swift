import ConclaveCrypto
import Testing

@Suite struct AgreementTests {
    func hex(_ s: String) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).map { i in
            let a = s.index(s.startIndex, offsetBy: i)
            return UInt8(s[a..<s.index(a, offsetBy: 2)], radix: 16)!
        }
    }

    /// RFC 7748 §6.1.
    @Test func x25519MatchesRFC7748() throws {
        let alice = try X25519KeyPair(secretKey: hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519KeyPair(secretKey: hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(alice.publicKey == hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
        #expect(bob.publicKey == hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(try alice.sharedSecret(with: bob.publicKey).bytes == shared)
        #expect(try bob.sharedSecret(with: alice.publicKey).bytes == shared)
    }

    @Test func lowOrderPeerKeysAreRefused() {
        let me = X25519KeyPair()
        #expect(throws: CryptoError.self) { try me.sharedSecret(with: [UInt8](repeating: 0, count: 32)) }
        #expect(throws: CryptoError.self) { try me.sharedSecret(with: [1, 2, 3]) }
    }

    @Test func derivedKeysAgreeAndDependOnContext() throws {
        let a = X25519KeyPair(), b = X25519KeyPair()
        let kab = try BLAKE2b.deriveKey(sharedSecret: a.sharedSecret(with: b.publicKey), publicKeyA: a.publicKey,
                                        publicKeyB: b.publicKey, context: Array("round-1".utf8), length: 16)
        let kba = try BLAKE2b.deriveKey(sharedSecret: b.sharedSecret(with: a.publicKey), publicKeyA: b.publicKey,
                                        publicKeyB: a.publicKey, context: Array("round-1".utf8), length: 16)
        let other = try BLAKE2b.deriveKey(sharedSecret: a.sharedSecret(with: b.publicKey), publicKeyA: a.publicKey,
                                          publicKeyB: b.publicKey, context: Array("round-2".utf8), length: 16)
        #expect(kab == kba)
        #expect(kab != other)
        #expect(kab.count == 16)
    }

    /// RFC 7693 Appendix A: BLAKE2b-512("abc").
    @Test func blake2bMatchesRFC7693() throws {
        let digest = try BLAKE2b.hash([Array("ab".utf8), Array("c".utf8)], length: 64)
        #expect(digest == hex("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                              + "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"))
        #expect(throws: CryptoError.self) { try BLAKE2b.hash([[1]], length: 8) }
    }

    @Test func ed25519SignsAndRefusesTampering() {
        let id = Ed25519KeyPair()
        let message = Array("silo-1 round 3 key".utf8)
        let signature = id.sign(message)
        #expect(Ed25519.verify(signature: signature, message: message, publicKey: id.publicKey))
        #expect(!Ed25519.verify(signature: signature, message: message + [0], publicKey: id.publicKey))
        var bad = signature
        bad[0] ^= 1
        #expect(!Ed25519.verify(signature: bad, message: message, publicKey: id.publicKey))
        #expect(!Ed25519.verify(signature: signature, message: message, publicKey: Ed25519KeyPair().publicKey))
    }

    @Test func aeadRoundTripsAndRefusesTamperingAndOtherContexts() throws {
        let key = SecureRandom.bytes(32)
        let ad = Array("from silo-1 to silo-2 round 3".utf8)
        let sealed = try XChaCha20Poly1305.seal(Array("share bundle".utf8), key: key, associatedData: ad)
        #expect(try XChaCha20Poly1305.open(sealed, key: key, associatedData: ad) == Array("share bundle".utf8))
        var tampered = sealed
        tampered[tampered.count - 1] ^= 1
        #expect(throws: CryptoError.self) { try XChaCha20Poly1305.open(tampered, key: key, associatedData: ad) }
        #expect(throws: CryptoError.self) {
            try XChaCha20Poly1305.open(sealed, key: key, associatedData: Array("from silo-1 to silo-2 round 4".utf8))
        }
        #expect(throws: CryptoError.self) { try XChaCha20Poly1305.open(sealed, key: SecureRandom.bytes(32), associatedData: ad) }
    }
}
