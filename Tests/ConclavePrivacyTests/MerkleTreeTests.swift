@testable import ConclavePrivacy
import Foundation
import Testing

/// The ledger's RFC 9162 Merkle tree: every proof-verification vector of transparency-dev/merkle
/// (Fixtures/merkle, happy paths and adversarial variants) gives exactly its expected outcome, and proofs this
/// code generates verify while any altered one does not.
@Suite struct MerkleTreeTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/merkle")

    struct Inclusion: Decodable {
        let leafIdx: UInt64, treeSize: UInt64, root: String?, leafHash: String?, proof: [String]?, desc: String, wantErr: Bool
    }
    struct Consistency: Decodable {
        let size1: UInt64, size2: UInt64, root1: String?, root2: String?, proof: [String]?, desc: String, wantErr: Bool
    }

    static func files(_ kind: String) throws -> [URL] {
        let root = fixtures.appendingPathComponent(kind)
        let all = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        return all.filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }
    }

    static func bytes(_ b64: String?) -> [UInt8] { b64.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? [] }

    @Test func inclusionVectors() throws {
        let files = try Self.files("inclusion")
        #expect(files.count > 90)
        for file in files {
            let v = try JSONDecoder().decode(Inclusion.self, from: Data(contentsOf: file))
            let ok = MerkleTree.verifyInclusion(index: v.leafIdx, size: v.treeSize, leafHash: Self.bytes(v.leafHash),
                                                proof: (v.proof ?? []).map(Self.bytes), root: Self.bytes(v.root))
            #expect(ok == !v.wantErr, "\(file.pathComponents.suffix(2).joined(separator: "/")): \(v.desc)")
        }
    }

    @Test func consistencyVectors() throws {
        let files = try Self.files("consistency")
        #expect(files.count > 50)
        for file in files {
            let v = try JSONDecoder().decode(Consistency.self, from: Data(contentsOf: file))
            let ok = MerkleTree.verifyConsistency(size1: v.size1, size2: v.size2, root1: Self.bytes(v.root1),
                                                  root2: Self.bytes(v.root2), proof: (v.proof ?? []).map(Self.bytes))
            #expect(ok == !v.wantErr, "\(file.pathComponents.suffix(2).joined(separator: "/")): \(v.desc)")
        }
    }

    /// RFC 9162's reference values: the root of the eight test leaves (also the vectors' 8-leaf root).
    @Test func rootsMatchTheReferenceTree() {
        let leaves: [[UInt8]] = [[], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
                                 [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
                                 [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f]]
        let hashes = leaves.map(MerkleTree.leafHash)
        #expect(Data(MerkleTree.root(hashes)).base64EncodedString() == "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
        #expect(Data(MerkleTree.root([[UInt8]]())).base64EncodedString() == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    }

    /// Every generated proof verifies for trees of 1…40 leaves; flipping a bit, shifting the index or the
    /// size, or dropping a component breaks it.
    @Test func generatedProofsVerifyAndAlteredOnesDoNot() {
        let leaves = (0..<40).map { MerkleTree.leafHash(Array("entry \($0)".utf8)) }
        for n in 1...40 {
            let tree = Array(leaves[0..<n])
            let root = MerkleTree.root(tree)
            for i in 0..<n {
                let proof = MerkleTree.inclusionProof(index: i, tree)
                #expect(MerkleTree.verifyInclusion(index: UInt64(i), size: UInt64(n), leafHash: tree[i], proof: proof, root: root))
                #expect(!MerkleTree.verifyInclusion(index: UInt64((i + 1) % n), size: UInt64(n), leafHash: tree[i], proof: proof, root: root) || n == 1)
                if var bad = proof.first {
                    bad[0] ^= 1
                    #expect(!MerkleTree.verifyInclusion(index: UInt64(i), size: UInt64(n), leafHash: tree[i], proof: [bad] + proof.dropFirst(), root: root))
                    #expect(!MerkleTree.verifyInclusion(index: UInt64(i), size: UInt64(n), leafHash: tree[i], proof: Array(proof.dropLast()), root: root))
                }
            }
            #expect(!MerkleTree.verifyConsistency(size1: 0, size2: UInt64(n), root1: MerkleTree.root([[UInt8]]()), root2: root, proof: []))
            for m in 1...n {
                let proof = MerkleTree.consistencyProof(from: m, tree)
                let old = MerkleTree.root(tree[0..<m])
                #expect(MerkleTree.verifyConsistency(size1: UInt64(m), size2: UInt64(n), root1: old, root2: root, proof: proof), "\(m) → \(n)")
                if m > 0, m < n, var bad = proof.last {
                    bad[31] ^= 0x80
                    #expect(!MerkleTree.verifyConsistency(size1: UInt64(m), size2: UInt64(n), root1: old, root2: root,
                                                          proof: proof.dropLast() + [bad]))
                    // A history that edited leaf 0 is not consistent with the old root.
                    var edited = tree
                    edited[0] = MerkleTree.leafHash(Array("forged".utf8))
                    #expect(!MerkleTree.verifyConsistency(size1: UInt64(m), size2: UInt64(n), root1: old,
                                                          root2: MerkleTree.root(edited), proof: MerkleTree.consistencyProof(from: m, edited)))
                }
            }
        }
    }

    /// The incremental log (memoised perfect subtrees) gives exactly the reference tree's roots and proofs, at
    /// every size, whichever order its queries come in.
    @Test func theIncrementalLogMatchesTheReferenceTree() {
        let leaves = (0..<70).map { MerkleTree.leafHash(Array("entry \($0)".utf8)) }
        var log = MerkleLog()
        for size in 0...leaves.count {
            if size > 0 { log.append(leafHash: leaves[size - 1]) }
            #expect(log.root(0, size) == MerkleTree.root(leaves[0..<size]), "root at \(size)")
            for index in stride(from: 0, to: size, by: 3) {
                #expect(log.inclusionProof(index: index, size: size) == MerkleTree.inclusionProof(index: index, leaves[0..<size]), "inclusion \(index)/\(size)")
            }
            for old in stride(from: 0, through: size, by: 5) {
                #expect(log.consistencyProof(from: old, size: size) == MerkleTree.consistencyProof(from: old, leaves[0..<size]), "consistency \(old)→\(size)")
            }
        }
        // Proofs against an older size after the log grew still match (the memo never goes stale).
        #expect(log.inclusionProof(index: 5, size: 13) == MerkleTree.inclusionProof(index: 5, leaves[0..<13]))
        #expect(log.consistencyProof(from: 7, size: 33) == MerkleTree.consistencyProof(from: 7, leaves[0..<33]))
    }
}
