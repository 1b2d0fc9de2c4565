import CSodium

/// XChaCha20-Poly1305 (libsodium): encrypts Shamir share bundles end to end between silos; the associated
/// data binds sender, receiver and round, so a share cannot be replayed elsewhere.
public enum XChaCha20Poly1305 {
    public static let keySize = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    public static let nonceSize = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)

    /// Returns nonce ‖ ciphertext ‖ tag, with a fresh random nonce.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], associatedData: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard key.count == keySize else { throw CryptoError("XChaCha20-Poly1305 needs a 32-byte key, got \(key.count)") }
        let nonce = SecureRandom.bytes(nonceSize)
        var out = [UInt8](repeating: 0, count: plaintext.count + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES))
        var length: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(&out, &length, plaintext, UInt64(plaintext.count), associatedData,
                                                   UInt64(associatedData.count), nil, nonce, key)
        return nonce + out.prefix(Int(length))
    }

    /// Decrypts and authenticates; any change to the ciphertext, the nonce or the associated data fails.
    public static func open(_ sealed: [UInt8], key: [UInt8], associatedData: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard key.count == keySize else { throw CryptoError("XChaCha20-Poly1305 needs a 32-byte key, got \(key.count)") }
        let tag = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
        guard sealed.count >= nonceSize + tag else { throw CryptoError("sealed message is too short") }
        let nonce = Array(sealed.prefix(nonceSize))
        let cipher = Array(sealed.dropFirst(nonceSize))
        var out = [UInt8](repeating: 0, count: cipher.count - tag)
        var length: UInt64 = 0
        let status = crypto_aead_xchacha20poly1305_ietf_decrypt(&out, &length, nil, cipher, UInt64(cipher.count),
                                                                 associatedData, UInt64(associatedData.count), nonce, key)
        guard status == 0 else { throw CryptoError("authentication failed: the message was altered or is not for this context") }
        return Array(out.prefix(Int(length)))
    }
}
