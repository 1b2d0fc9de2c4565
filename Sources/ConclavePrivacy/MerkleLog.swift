/// The ledger's Merkle tree kept incrementally, for a coordinator that serves proofs all day: leaf hashes are
/// appended once, and the root of every perfect (power-of-two) subtree is remembered the first time it is
/// computed — in an append-only log it never changes. A proof then costs O(log² n) hashes instead of O(n).
/// Same trees and proofs as `MerkleTree` (RFC 9162), which stays the reference.
public struct MerkleLog: Sendable {
    public typealias Hash = MerkleTree.Hash
    public private(set) var leaves: [Hash] = []
    private var perfect: [Int: Hash] = [:]

    public init() {}

    public var count: Int { leaves.count }

    public mutating func append(leafHash: Hash) { leaves.append(leafHash) }

    /// MTH of leaves[lo..<hi].
    public mutating func root(_ lo: Int, _ hi: Int) -> Hash {
        let n = hi - lo
        if n == 0 { return MerkleTree.sha256([]) }
        if n == 1 { return leaves[lo] }
        let isPerfect = n & (n - 1) == 0
        let key = lo << 6 | n.trailingZeroBitCount
        if isPerfect, let cached = perfect[key] { return cached }
        let k = MerkleTree.largestPowerOfTwo(below: n)
        let r = MerkleTree.nodeHash(root(lo, lo + k), root(lo + k, hi))
        if isPerfect { perfect[key] = r }
        return r
    }

    /// PATH(index, D[0..<size]).
    public mutating func inclusionProof(index: Int, size: Int) -> [Hash] {
        precondition(index >= 0 && index < size && size <= leaves.count, "leaf index or size out of range")
        return path(index, 0, size)
    }

    private mutating func path(_ m: Int, _ lo: Int, _ hi: Int) -> [Hash] {
        guard hi - lo > 1 else { return [] }
        let k = MerkleTree.largestPowerOfTwo(below: hi - lo)
        if m < k { return path(m, lo, lo + k) + [root(lo + k, hi)] }
        return path(m - k, lo + k, hi) + [root(lo, lo + k)]
    }

    /// PROOF(from, D[0..<size]).
    public mutating func consistencyProof(from old: Int, size: Int) -> [Hash] {
        precondition(old >= 0 && old <= size && size <= leaves.count, "tree size out of range")
        guard old > 0, old < size else { return [] }
        return subproof(old, 0, size, complete: true)
    }

    private mutating func subproof(_ m: Int, _ lo: Int, _ hi: Int, complete: Bool) -> [Hash] {
        if m == hi - lo { return complete ? [] : [root(lo, hi)] }
        let k = MerkleTree.largestPowerOfTwo(below: hi - lo)
        if m <= k { return subproof(m, lo, lo + k, complete: complete) + [root(lo + k, hi)] }
        return subproof(m - k, lo + k, hi, complete: false) + [root(lo, lo + k)]
    }
}
