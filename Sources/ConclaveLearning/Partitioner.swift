/// Splits a dataset's example indices across silos, reproducibly from a seed.
public enum Partitioner {
    public enum Scheme: Sendable, Equatable {
        /// Uniformly at random, equal sizes (±1).
        case iid
        /// Per label, proportions drawn from Dirichlet(α) over the silos (Hsu et al. 2019). Smaller α is
        /// more skewed; α = 0.5 is a common "strongly non-IID" setting.
        case dirichlet(alpha: Double)
    }

    /// Returns one index list per silo; together they cover every index exactly once.
    /// For Dirichlet, draws again (up to 100 times) until every silo holds at least `minimumPerSilo`.
    public static func partition(labels: [Int32], classCount: Int, silos: Int, scheme: Scheme, seed: UInt64,
                                 minimumPerSilo: Int = 10) throws(DataError) -> [[Int]] {
        guard silos >= 1 else { throw DataError("need at least one silo, got \(silos)") }
        guard labels.count >= silos else {
            throw DataError("cannot split \(labels.count) examples across \(silos) silos")
        }
        var rng = SeededGenerator(seed: seed)
        switch scheme {
        case .iid:
            var all = Array(labels.indices)
            all.shuffle(using: &rng)
            return (0..<silos).map { s in stride(from: s, to: all.count, by: silos).map { all[$0] } }
        case .dirichlet(let alpha):
            guard alpha > 0 else { throw DataError("Dirichlet α must be positive, got \(alpha)") }
            var byClass = [[Int]](repeating: [], count: classCount)
            for (i, l) in labels.enumerated() { byClass[Int(l)].append(i) }
            let floor = min(minimumPerSilo, labels.count / silos)
            for _ in 0..<100 {
                var parts = [[Int]](repeating: [], count: silos)
                for var members in byClass where !members.isEmpty {
                    members.shuffle(using: &rng)
                    let p = rng.nextDirichlet(alpha: alpha, count: silos)
                    var start = 0, cumulative = 0.0
                    for s in 0..<silos {
                        cumulative += p[s]
                        let end = s == silos - 1 ? members.count : min(members.count, Int((cumulative * Double(members.count)).rounded()))
                        if end > start { parts[s].append(contentsOf: members[start..<end]) }
                        start = max(start, end)
                    }
                }
                if parts.allSatisfy({ $0.count >= floor }) {
                    return parts.map { var p = $0; p.shuffle(using: &rng); return p }
                }
            }
            throw DataError("could not give every one of \(silos) silos \(floor) examples with α = \(alpha); raise α or use fewer silos")
        }
    }
}
