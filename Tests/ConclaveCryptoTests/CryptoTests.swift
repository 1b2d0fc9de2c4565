import ConclaveCrypto
import Testing

@Suite struct CryptoTests {
    func hex(_ s: String) -> [UInt8] {
        var out = [UInt8]()
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    @Test func sha256KnownAnswer() {
        let digest = Array("abc".utf8).withUnsafeBytes { SHA256.hex($0) }
        #expect(digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// NIST SP 800-38A F.5.1 (CTR-AES128): keystream = ciphertext ⊕ plaintext for the first block.
    @Test func aesCTRMatchesNISTVector() throws {
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c")
        let iv = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        let plain = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
        let cipher = hex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff")
        var stream = [UInt8](repeating: 0xAA, count: 32)
        try stream.withUnsafeMutableBytes { try AESCTRKeystream(key: key, iv: iv).fill($0) }
        #expect(zip(plain, stream).map { $0 ^ $1 } == cipher)
    }

    /// RFC 8439 A.1 test vector #1: all-zero key and nonce, block 0.
    @Test func chacha20MatchesRFCVector() throws {
        var stream = [UInt8](repeating: 0, count: 32)
        try stream.withUnsafeMutableBytes {
            try ChaCha20Keystream(key: [UInt8](repeating: 0, count: 32)).fill($0)
        }
        #expect(stream == hex("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"))
    }

    @Test func keystreamsRefuseWrongKeySizes() {
        #expect(throws: CryptoError.self) { try AESCTRKeystream(key: [1, 2, 3]) }
        #expect(throws: CryptoError.self) { try ChaCha20Keystream(key: [UInt8](repeating: 0, count: 16)) }
    }

    @Test func secureRandomIsNotConstant() {
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
    }
}
