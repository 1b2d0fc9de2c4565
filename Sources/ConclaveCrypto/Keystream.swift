import COpenSSL
import CSodium

/// A cryptographic pseudo-random generator that expands a 16- or 32-byte key into a keystream.
/// Secure aggregation expands its pairwise and self masks with one of these.
public protocol Keystream: Sendable {
    /// Fills `buffer` with the keystream starting `byteOffset` bytes in (a multiple of 64), so a long mask
    /// can be produced in cache-sized pieces, or in parallel.
    func fill(_ buffer: UnsafeMutableRawBufferPointer, byteOffset: Int) throws(CryptoError)
}

extension Keystream {
    /// Fills `buffer` with the keystream from its start.
    public func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        try fill(buffer, byteOffset: 0)
    }
}

public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// AES-128-CTR from OpenSSL's libcrypto: uses AES-NI where the CPU has it (about 4× ChaCha20 here).
public struct AESCTRKeystream: Keystream {
    public let key: [UInt8]
    public let iv: [UInt8]

    public init(key: [UInt8], iv: [UInt8] = [UInt8](repeating: 0, count: 16)) throws(CryptoError) {
        guard key.count == 16 else { throw CryptoError("AES-128-CTR needs a 16-byte key, got \(key.count)") }
        guard iv.count == 16 else { throw CryptoError("AES-128-CTR needs a 16-byte IV, got \(iv.count)") }
        self.key = key
        self.iv = iv
    }

    public func fill(_ buffer: UnsafeMutableRawBufferPointer, byteOffset: Int) throws(CryptoError) {
        try KeystreamCursor(self, byteOffset: byteOffset).next(buffer)
    }

    /// The counter block at `byteOffset`: the IV plus offset/16, as a 128-bit big-endian number.
    func counter(at byteOffset: Int) -> [UInt8] {
        var counter = iv
        var carry = UInt64(byteOffset / 16)
        for i in stride(from: 15, through: 0, by: -1) where carry > 0 {
            let sum = UInt64(counter[i]) + (carry & 0xff)
            counter[i] = UInt8(truncatingIfNeeded: sum)
            carry = (carry >> 8) + (sum >> 8)
        }
        return counter
    }
}

/// ChaCha20 (IETF) from libsodium: the portable fallback where AES-NI is missing.
public struct ChaCha20Keystream: Keystream {
    public let key: [UInt8]
    public let nonce: [UInt8]

    public init(key: [UInt8], nonce: [UInt8] = [UInt8](repeating: 0, count: 12)) throws(CryptoError) {
        guard key.count == 32 else { throw CryptoError("ChaCha20 needs a 32-byte key, got \(key.count)") }
        guard nonce.count == 12 else { throw CryptoError("ChaCha20 needs a 12-byte nonce, got \(nonce.count)") }
        Sodium.ensureReady()
        self.key = key
        self.nonce = nonce
    }

    public func fill(_ buffer: UnsafeMutableRawBufferPointer, byteOffset: Int) throws(CryptoError) {
        try KeystreamCursor(self, byteOffset: byteOffset).next(buffer)
    }
}

/// Reads a keystream sequentially from a starting offset, keeping the cipher state between reads so many
/// small reads cost no more than one long one. The one place that drives libcrypto and libsodium's ciphers.
public final class KeystreamCursor {
    private enum Engine {
        case aes(OpaquePointer)
        case chacha(key: [UInt8], nonce: [UInt8])
    }

    private let engine: Engine
    private var offset: Int

    /// Starts `stream` at `byteOffset` (a multiple of 64).
    public init(_ stream: any Keystream, byteOffset: Int) throws(CryptoError) {
        guard byteOffset >= 0, byteOffset % 64 == 0 else { throw CryptoError("keystream offset must be a multiple of 64") }
        offset = byteOffset
        switch stream {
        case let aes as AESCTRKeystream:
            guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new failed") }
            guard EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), nil, aes.key, aes.counter(at: byteOffset)) == 1 else {
                EVP_CIPHER_CTX_free(ctx)
                throw CryptoError("AES-128-CTR initialisation failed")
            }
            engine = .aes(ctx)
        case let chacha as ChaCha20Keystream:
            engine = .chacha(key: chacha.key, nonce: chacha.nonce)
        default:
            throw CryptoError("no cursor for keystream \(type(of: stream))")
        }
    }

    deinit {
        if case .aes(let ctx) = engine { EVP_CIPHER_CTX_free(ctx) }
    }

    /// Fills `buffer` with the next `buffer.count` bytes. Every read but the last must be a multiple of 64.
    public func next(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        guard let out = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count > 0 else { return }
        guard offset % 64 == 0 else { throw CryptoError("a short read must be the last read of a keystream cursor") }
        // Encrypting (XOR-ing) zeros yields the raw keystream; done in place, in slices that fit an Int32.
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        var done = 0
        while done < buffer.count {
            let n = min(buffer.count - done, 1 << 30)
            switch engine {
            case .aes(let ctx):
                var written: Int32 = 0
                guard EVP_EncryptUpdate(ctx, out + done, &written, out + done, Int32(n)) == 1, Int(written) == n else {
                    throw CryptoError("AES-128-CTR keystream generation failed")
                }
            case .chacha(let key, let nonce):
                let block = UInt32(truncatingIfNeeded: (offset + done) / 64)
                guard crypto_stream_chacha20_ietf_xor_ic(out + done, out + done, UInt64(n), nonce, block, key) == 0 else {
                    throw CryptoError("ChaCha20 keystream generation failed")
                }
            }
            done += n
        }
        offset += buffer.count
    }
}
