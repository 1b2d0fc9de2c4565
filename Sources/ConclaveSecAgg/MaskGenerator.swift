public import ConclaveCrypto
import Dispatch

/// Expands mask seeds into pseudo-random UInt32 vectors with a cryptographic PRG — AES-128-CTR (libcrypto,
/// AES-NI) by default, ChaCha20 (libsodium) as the portable fallback — and adds or subtracts them modulo 2³².
/// Never a non-cryptographic generator.
public enum MaskGenerator {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case aes
        case chacha
    }

    /// One mask to apply: its 32-byte seed and whether it is added (+1) or subtracted (−1).
    public struct Term: Sendable {
        public var seed: [UInt8]
        public var sign: Int32
        public init(seed: [UInt8], sign: Int32) {
            self.seed = seed
            self.sign = sign
        }
    }

    /// Values per piece: 16 KiB of keystream and 16 KiB of output stay in L1 while every term is added.
    static let piece = 4096

    static func keystream(_ seed: [UInt8], _ kind: Kind) throws(CryptoError) -> any Keystream {
        guard seed.count == 32 else { throw CryptoError("mask seeds are 32 bytes, got \(seed.count)") }
        return switch kind {
        case .aes: try AESCTRKeystream(key: Array(seed.prefix(16)))  // the KDF output is uniform: any 16 bytes do
        case .chacha: try ChaCha20Keystream(key: seed)
        }
    }

    /// vector ← vector ± mask(seed) for every term, modulo 2³². The vector is split into `threads` contiguous
    /// ranges, one per thread; each thread walks its range in cache-sized pieces and adds every term's
    /// keystream to a piece before moving on, reading each keystream sequentially through a cursor.
    public static func apply(_ terms: [Term], kind: Kind, to vector: inout [UInt32], threads: Int = 1) throws(CryptoError) {
        guard !terms.isEmpty, !vector.isEmpty else { return }
        let streams = try terms.map { term throws(CryptoError) in (try keystream(term.seed, kind), term.sign) }
        let pieces = (vector.count + piece - 1) / piece
        let workers = max(1, min(threads, pieces))
        let failure = FailureBox()
        vector.withUnsafeMutableBufferPointer { buffer in
            let target = UnsafeSendable(buffer)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let first = pieces * worker / workers, last = pieces * (worker + 1) / workers
                let start = first * piece, end = min(target.value.count, last * piece)
                guard start < end else { return }
                do throws(CryptoError) {
                    let cursors = try streams.map { s throws(CryptoError) in
                        (try KeystreamCursor(s.0, byteOffset: start * 4), s.1)
                    }
                    let scratch = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: piece)
                    defer { scratch.deallocate() }
                    let scratchBase = UnsafeMutableRawPointer(scratch.baseAddress!)
                    var at = start
                    while at < end {
                        let count = min(piece, end - at)
                        let out = target.value.baseAddress! + at
                        for (cursor, sign) in cursors {
                            let bytes = UnsafeMutableRawBufferPointer(start: scratchBase, count: count * 4)
                            try cursor.next(bytes)
                            if sign > 0 {
                                for i in 0..<count { out[i] &+= scratch[i] }
                            } else {
                                for i in 0..<count { out[i] &-= scratch[i] }
                            }
                        }
                        at += count
                    }
                } catch {
                    failure.set(error)
                }
            }
        }
        if let error = failure.error { throw error }
    }

    /// The mask of one seed, from its start.
    public static func expand(seed: [UInt8], kind: Kind, count: Int) throws(CryptoError) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: count)
        try apply([Term(seed: seed, sign: 1)], kind: kind, to: &out)
        return out
    }
}

/// A pointer handed to worker threads that write disjoint ranges of it.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class FailureBox: @unchecked Sendable {
    private var stored: CryptoError?
    private let lock = DispatchQueue(label: "conclave.secagg.failure")
    func set(_ e: CryptoError) { lock.sync { if stored == nil { stored = e } } }
    var error: CryptoError? { lock.sync { stored } }
}
