import ConclaveTensor

/// The example-weighted sum of silo updates, kept as one vector: memory is O(model size) however many
/// silos contribute. Every update is validated in full before it touches the sum, so a bad one cannot
/// corrupt the round.
public struct RunningSum: Sendable {
    public private(set) var sum: [Float]
    public private(set) var totalExamples: UInt64 = 0
    public private(set) var count = 0

    public init(parameterCount: Int) {
        sum = [Float](repeating: 0, count: parameterCount)
    }

    public static func validate(_ update: [Float], parameterCount: Int, silo: String) throws(FederationError) {
        guard update.count == parameterCount else {
            throw FederationError(.invalidArgument,
                "update from silo '\(silo)' has \(update.count) values; the run's model has \(parameterCount) parameters")
        }
        if let i = update.firstIndex(where: { !$0.isFinite }) {
            throw FederationError(.invalidArgument, "update from silo '\(silo)' has a non-finite value at index \(i)")
        }
    }

    public mutating func add(_ update: [Float], examples: UInt64, silo: String) throws(FederationError) {
        try RunningSum.validate(update, parameterCount: sum.count, silo: silo)
        guard examples > 0 else {
            throw FederationError(.invalidArgument, "update from silo '\(silo)' claims 0 training examples")
        }
        sum.addScaled(update, by: Float(examples))
        totalExamples += examples
        count += 1
    }

    /// Σ nₖ·Δₖ / Σ nₖ (FedAvg's weighting by example counts).
    public func mean() -> [Float] {
        var out = sum
        if totalExamples > 0 { out.scale(by: Float(1 / Double(totalExamples))) }
        return out
    }
}
