public import ConclaveCrypto
public import ConclaveSecAgg
public import ConclavePrivacy

/// What a silo selected for a secure round is told beside the global weights: the round's secure-aggregation
/// parameters, the identity keys of the other selected silos, and its own weight in the average.
public struct SecureTask: Sendable, Equatable {
    /// Binds signatures, ciphertexts and masks to this attempt of this round; fresh randomness in it means a
    /// retried round never reuses a context.
    public var context: [UInt8]
    public var threshold: Int
    public var prg: MaskGenerator.Kind
    /// The silos selected for the round, sorted.
    public var members: [String]
    /// Neighbours per silo in the SecAgg+ Harary graph; nil for the complete graph.
    public var degree: Int?
    public var graphSeed: [UInt8]
    /// Long-term Ed25519 public keys of the members.
    public var directory: [String: [UInt8]]
    public var clipNorm: Double
    /// This silo's FedAvg weight, nₖ / Σ n over the selected silos (≤ 1, so a weighted clipped update still
    /// lies within the clip bound the encoding is sized for).
    public var weight: Double
    public var precisionBits: Int
    public var parameterCount: Int
    /// Distributed DP: the silo adds its share of discrete Gaussian noise to its integer-encoded input (the
    /// protocol then runs on the rotated, padded vector); nil for the fixed-point encoding.
    public var distributed: DistributedDiscreteGaussian?
    /// Adaptive clipping: the silo appends one more value, C if its update was within C and 0 otherwise, so the
    /// coordinator learns only how many were, and only as a noisy count.
    public var clipBit: Bool

    public init(context: [UInt8], threshold: Int, prg: MaskGenerator.Kind, members: [String], degree: Int?,
                graphSeed: [UInt8], directory: [String: [UInt8]], clipNorm: Double, weight: Double,
                precisionBits: Int = SecureAggregationDefaults.precisionBits, parameterCount: Int,
                distributed: DistributedDiscreteGaussian? = nil, clipBit: Bool = false) {
        self.context = context
        self.threshold = threshold
        self.prg = prg
        self.members = members
        self.degree = degree
        self.graphSeed = graphSeed
        self.directory = directory
        self.clipNorm = clipNorm
        self.weight = weight
        self.precisionBits = precisionBits
        self.parameterCount = parameterCount
        self.distributed = distributed
        self.clipBit = clipBit
    }

    /// The parameters both sides run `SecAggSilo` / `SecAggServer` with.
    public func parameters() throws(FederationError) -> SecAggParameters {
        var graph: NeighbourGraph?
        if let degree {
            do { graph = try NeighbourGraph.harary(members, degree: degree, seed: graphSeed) } catch {
                throw FederationError(.invalidArgument, "secure round: \(error.message)")
            }
        }
        let length = if let distributed { distributed.paddedDimension } else {
            try encoding().encodedLength(parameterCount) + (clipBit ? encoding().encodedLength(1) : 0)
        }
        return SecAggParameters(context: context, threshold: threshold, length: length,
                                prg: prg, graph: graph)
    }

    /// Sized for every member's clipped update: the sum over all of them cannot overflow.
    public func encoding() throws(FederationError) -> FixedPointEncoding {
        do { return try FixedPointEncoding(clipNorm: clipNorm, maxSilos: members.count, precisionBits: precisionBits) } catch {
            throw FederationError(.invalidArgument, "secure round: \(error.message)")
        }
    }

    /// The silo's input: its update clipped to the bound, times its weight, quantized with unbiased
    /// stochastic rounding driven by a cryptographic generator.
    public func encode(_ update: [Float]) throws(FederationError) -> [UInt32] {
        guard update.count == parameterCount else {
            throw FederationError(.invalidArgument,
                "update has \(update.count) values; the round expects \(parameterCount)")
        }
        guard weight > 0, weight <= 1 else {
            throw FederationError(.invalidArgument, "secure round: weight must be in (0, 1], got \(weight)")
        }
        let encoding = try encoding()
        let weighted = encoding.clip(update).map { $0 * Float(weight) }
        var rng = ChaChaDRBG()
        if let distributed {
            guard distributed.dimension == parameterCount else {
                throw FederationError(.invalidArgument,
                    "secure round: distributed noise is sized for \(distributed.dimension) values, the model has \(parameterCount)")
            }
            return distributed.encode(weighted, rotation: rotation(distributed), using: &rng)
        }
        let words = encoding.encode(weighted, using: &rng)
        guard clipBit else { return words }
        let norm = update.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return words + encoding.encode([norm <= clipNorm ? Float(clipNorm) : 0], using: &rng)
    }

    func rotation(_ mechanism: DistributedDiscreteGaussian) -> RandomizedHadamard {
        RandomizedHadamard(dimension: parameterCount, seed: mechanism.rotationSeed)
    }
}
