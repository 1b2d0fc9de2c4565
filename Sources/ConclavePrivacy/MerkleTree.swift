import ConclaveCrypto

/// The RFC 9162 (Certificate Transparency 2.0) Merkle tree the privacy ledger is committed to: leaf hash
/// SHA-256(0x00 ‖ entry), node hash SHA-256(0x01 ‖ left ‖ right), the empty tree SHA-256(""), split at the
/// largest power of two below n. Inclusion proofs show an entry is in a tree; consistency proofs show a
/// larger tree extends a smaller one (nothing dropped, reordered or edited), which is what silos check
/// before they co-sign a checkpoint. Pure: hashes in, hashes out.
public enum MerkleTree {
    public typealias Hash = [UInt8]

    public static func leafHash(_ entry: [UInt8]) -> Hash { sha256([0x00] + entry) }

    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash { sha256([0x01] + left + right) }

    static func sha256(_ bytes: [UInt8]) -> Hash {
        var h = SHA256()
        bytes.withUnsafeBytes { h.update($0) }
        return h.finalize()
    }

    /// MTH over leaf hashes (RFC 9162 §2.1.1).
    public static func root<C: RandomAccessCollection>(_ leaves: C) -> Hash where C.Element == Hash, C.Index == Int {
        switch leaves.count {
        case 0: return sha256([])
        case 1: return leaves[leaves.startIndex]
        default:
            let k = largestPowerOfTwo(below: leaves.count)
            let mid = leaves.startIndex + k
            return nodeHash(root(leaves[leaves.startIndex..<mid]), root(leaves[mid..<leaves.endIndex]))
        }
    }

    /// PATH(m, D[n]) (§2.1.3.1): the audit path of leaf `index`.
    public static func inclusionProof<C: RandomAccessCollection>(index: Int, _ leaves: C) -> [Hash]
    where C.Element == Hash, C.Index == Int, C.SubSequence: RandomAccessCollection {
        precondition(index >= 0 && index < leaves.count, "leaf index out of range")
        return path(index, Array(leaves)[...])
    }

    private static func path(_ m: Int, _ d: ArraySlice<Hash>) -> [Hash] {
        guard d.count > 1 else { return [] }
        let k = largestPowerOfTwo(below: d.count)
        let mid = d.startIndex + k
        if m < k { return path(m, d[d.startIndex..<mid]) + [root(d[mid...])] }
        return path(m - k, d[mid...]) + [root(d[d.startIndex..<mid])]
    }

    /// PROOF(m, D[n]) (§2.1.4.1): the consistency proof from the first `size` leaves to all of them.
    public static func consistencyProof<C: RandomAccessCollection>(from size: Int, _ leaves: C) -> [Hash]
    where C.Element == Hash, C.Index == Int {
        precondition(size >= 0 && size <= leaves.count, "tree size out of range")
        guard size > 0, size < leaves.count else { return [] }
        return subproof(size, Array(leaves)[...], complete: true)
    }

    private static func subproof(_ m: Int, _ d: ArraySlice<Hash>, complete: Bool) -> [Hash] {
        if m == d.count { return complete ? [] : [root(d)] }
        let k = largestPowerOfTwo(below: d.count)
        let mid = d.startIndex + k
        if m <= k { return subproof(m, d[d.startIndex..<mid], complete: complete) + [root(d[mid...])] }
        return subproof(m - k, d[mid...], complete: false) + [root(d[d.startIndex..<mid])]
    }

    /// §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size` leaves with `root`?
    public static func verifyInclusion(index: UInt64, size: UInt64, leafHash: Hash, proof: [Hash], root: Hash) -> Bool {
        guard index < size, leafHash.count == 32, root.count == 32, proof.allSatisfy({ $0.count == 32 }) else { return false }
        var fn = index, sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    repeat { fn >>= 1; sn >>= 1 } while fn & 1 == 0 && fn != 0
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// §2.1.4.2: does `proof` show the tree of `size2` leaves with `root2` extends the one of `size1` with
    /// `root1`? (Equal sizes need an empty proof and equal roots; size1 = 0 is refused, as RFC 9162 does.)
    public static func verifyConsistency(size1: UInt64, size2: UInt64, root1: Hash, root2: Hash, proof: [Hash]) -> Bool {
        // RFC 9162 defines proofs for 0 < size1 ≤ size2 only (an empty tree proves nothing).
        guard size1 > 0, size1 <= size2 else { return false }
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        guard !proof.isEmpty, root1.count == 32, root2.count == 32, proof.allSatisfy({ $0.count == 32 }) else { return false }
        var path = proof
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }  // an exact power of two: its root is a node
        var fn = size1 - 1, sn = size2 - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    repeat { fn >>= 1; sn >>= 1 } while fn & 1 == 0 && fn != 0
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && fr == root1 && sr == root2
    }

    /// The largest power of two strictly below n (n ≥ 2).
    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }
}
