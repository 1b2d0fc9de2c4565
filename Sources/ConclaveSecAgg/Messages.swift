/// The messages of one secure-aggregation round (Bonawitz et al., CCS 2017), as plain values: the agent and
/// the coordinator carry them over gRPC, tests pass them directly.
public struct KeyAdvertisement: Sendable, Equatable {
    public var silo: String
    /// X25519 key that share bundles to this silo are encrypted under.
    public var encryptionKey: [UInt8]
    /// X25519 key the pairwise masks are agreed with.
    public var maskKey: [UInt8]
    /// Ed25519 signature by the silo's identity key over both keys and the round context.
    public var signature: [UInt8]

    public init(silo: String, encryptionKey: [UInt8], maskKey: [UInt8], signature: [UInt8]) {
        self.silo = silo
        self.encryptionKey = encryptionKey
        self.maskKey = maskKey
        self.signature = signature
    }
}

/// A share bundle from one silo to another, end-to-end encrypted; the coordinator only relays it.
public struct EncryptedShare: Sendable, Equatable {
    public var from: String
    public var to: String
    public var ciphertext: [UInt8]

    public init(from: String, to: String, ciphertext: [UInt8]) {
        self.from = from
        self.to = to
        self.ciphertext = ciphertext
    }
}

/// What a surviving silo reveals for unmasking: the self-mask seed shares of silos that sent a masked input,
/// and the mask-key shares of silos that dropped after sharing — never both for one silo.
public struct UnmaskingResponse: Sendable, Equatable {
    public var silo: String
    public var selfMaskShares: [String: Shamir.Share]
    public var maskKeyShares: [String: Shamir.Share]

    public init(silo: String, selfMaskShares: [String: Shamir.Share], maskKeyShares: [String: Shamir.Share]) {
        self.silo = silo
        self.selfMaskShares = selfMaskShares
        self.maskKeyShares = maskKeyShares
    }
}

public struct SecAggError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parameters both sides agree on for one round.
public struct SecAggParameters: Sendable, Equatable {
    /// Binds every signature, ciphertext and mask to this round (e.g. "run-1f2e/round-7/attempt-1").
    public var context: [UInt8]
    /// Fewest surviving silos the sum can be unmasked from; also the Shamir threshold.
    public var threshold: Int
    /// Length of the (encoded) vectors.
    public var length: Int
    public var prg: MaskGenerator.Kind
    /// Who is whose neighbour (SecAgg+); nil is the complete graph over the silos that advertise keys.
    /// With a graph, `threshold` counts shares within one silo's neighbourhood.
    public var graph: NeighbourGraph?

    public init(context: [UInt8], threshold: Int, length: Int, prg: MaskGenerator.Kind = .aes, graph: NeighbourGraph? = nil) {
        self.context = context
        self.threshold = threshold
        self.length = length
        self.prg = prg
        self.graph = graph
    }

    /// Whether `a` and `b` exchange masks and shares.
    func adjacent(_ a: String, _ b: String) -> Bool {
        a == b || graph.map { $0.neighbours(of: a).contains(b) } ?? true
    }

    func signedKeys(_ silo: String, _ encryptionKey: [UInt8], _ maskKey: [UInt8]) -> [UInt8] {
        Array("conclave-secagg-keys".utf8) + frame(Array(silo.utf8)) + frame(encryptionKey) + frame(maskKey) + frame(context)
    }

    func signedSurvivors(_ survivors: [String]) -> [UInt8] {
        Array("conclave-secagg-survivors".utf8) + frame(context) + survivors.sorted().flatMap { frame(Array($0.utf8)) }
    }

    func shareAssociatedData(from: String, to: String) -> [UInt8] {
        Array("conclave-secagg-shares".utf8) + frame(Array(from.utf8)) + frame(Array(to.utf8)) + frame(context)
    }
}

/// Length-prefixed, so concatenations of different fields can never collide.
func frame(_ bytes: [UInt8]) -> [UInt8] {
    let n = UInt32(bytes.count)
    return [UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + bytes
}
