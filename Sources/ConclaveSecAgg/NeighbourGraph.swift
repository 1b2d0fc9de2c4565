public import ConclaveCrypto

/// Who masks with whom and who holds whose shares. Up to about a hundred silos every silo is every other's
/// neighbour (the complete graph of Bonawitz et al.); above that, SecAgg+ (Bell et al., CCS 2020) uses a
/// randomly relabelled Harary graph of even degree k, so each silo does O(k) work instead of O(n).
public struct NeighbourGraph: Sendable, Equatable {
    public let members: [String]
    /// Neighbours of each member, itself excluded.
    private let adjacency: [String: Set<String>]

    public static func complete(_ members: [String]) -> NeighbourGraph {
        let all = Set(members)
        return NeighbourGraph(members: members.sorted(),
                              adjacency: Dictionary(uniqueKeysWithValues: all.map { ($0, all.subtracting([$0])) }))
    }

    /// The Harary graph H(k, n) — position i adjacent to i ± 1 … i ± k/2 around a ring — over the members in
    /// an order drawn from `seed` (the coordinator's choice, announced with the round).
    public static func harary(_ members: [String], degree k: Int, seed: [UInt8]) throws(CryptoError) -> NeighbourGraph {
        let n = members.count
        guard k >= 2, k % 2 == 0, k < n else { throw CryptoError("Harary degree must be even and in 2…\(n - 1), got \(k)") }
        var rng = ChaChaDRBG(seed: try BLAKE2b.hash([Array("harary".utf8), seed], length: 32))
        var ring = members.sorted()
        ring.shuffle(using: &rng)
        var adjacency = [String: Set<String>]()
        for (i, m) in ring.enumerated() {
            var near = Set<String>()
            for step in 1...(k / 2) {
                near.insert(ring[(i + step) % n])
                near.insert(ring[(i - step + n) % n])
            }
            adjacency[m] = near
        }
        return NeighbourGraph(members: members.sorted(), adjacency: adjacency)
    }

    public func neighbours(of silo: String) -> Set<String> { adjacency[silo] ?? [] }

    /// The silo and its neighbours, sorted: the parties its secrets are shared among.
    public func neighbourhood(of silo: String) -> [String] { (neighbours(of: silo).union([silo])).sorted() }

    public var isComplete: Bool { adjacency.values.allSatisfy { $0.count == members.count - 1 } }
}
