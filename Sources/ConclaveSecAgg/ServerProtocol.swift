import ConclaveCrypto

/// The coordinator's side of secure aggregation as a pure state machine. It holds the running modular sum
/// of masked inputs — never an individual input — and, after unmasking, learns only the sum over the silos
/// whose masked inputs arrived. Each `end…` call closes a phase with whoever answered; fewer than t aborts.
public struct SecAggServer: Sendable {
    public let parameters: SecAggParameters
    /// Long-term Ed25519 public keys by silo id; signatures are checked here too, so a forged key or survivor
    /// signature is refused at the door.
    private let directory: [String: [UInt8]]
    public private(set) var phase = Phase.advertising
    private var keys: [String: KeyAdvertisement] = [:]
    private var outbox: [String: [EncryptedShare]] = [:]
    private var sharers: Set<String> = []
    private var sum: [UInt32]
    private var maskedFrom: Set<String> = []
    private var survivors: [String] = []
    private var signatures: [String: [UInt8]] = [:]
    private var responses: [String: UnmaskingResponse] = [:]
    /// Threads used to expand masks when unmasking.
    public var threads = 1

    public enum Phase: Equatable, Sendable {
        case advertising, sharing, collecting, checking, unmasking, finished
        case aborted(String)
    }

    public init(parameters: SecAggParameters, directory: [String: [UInt8]]) {
        self.parameters = parameters
        self.directory = directory
        self.sum = [UInt32](repeating: 0, count: parameters.length)
    }

    private func expect(_ p: Phase, _ what: String) throws(SecAggError) {
        guard phase == p else { throw SecAggError("\(what) refused: the round is in phase \(phase)") }
    }

    private mutating func requireQuorum(_ count: Int, _ what: String) throws(SecAggError) {
        guard count >= parameters.threshold else {
            let reason = "only \(count) silos \(what), fewer than the threshold \(parameters.threshold)"
            phase = .aborted(reason)
            throw SecAggError("round aborted: \(reason)")
        }
    }

    // Round 0
    public mutating func receiveKeys(_ ad: KeyAdvertisement) throws(SecAggError) {
        try expect(.advertising, "key advertisement from '\(ad.silo)'")
        guard let identity = directory[ad.silo] else { throw SecAggError("silo '\(ad.silo)' is not enrolled") }
        guard keys[ad.silo] == nil else { throw SecAggError("silo '\(ad.silo)' already advertised keys") }
        guard Ed25519.verify(signature: ad.signature, message: parameters.signedKeys(ad.silo, ad.encryptionKey, ad.maskKey),
                             publicKey: identity) else {
            throw SecAggError("key advertisement of silo '\(ad.silo)' has a bad signature")
        }
        keys[ad.silo] = ad
    }

    public mutating func endAdvertising() throws(SecAggError) -> [KeyAdvertisement] {
        try expect(.advertising, "closing key advertisement")
        try requireQuorum(keys.count, "advertised keys")
        phase = .sharing
        return keys.keys.sorted().map { keys[$0]! }
    }

    /// The advertisements one silo needs: its own and its neighbours' (all of them for the complete graph).
    public func advertisements(for silo: String) -> [KeyAdvertisement] {
        keys.keys.sorted().filter { parameters.adjacent(silo, $0) }.map { keys[$0]! }
    }

    // Round 1
    public mutating func receiveShares(from silo: String, _ shares: [EncryptedShare]) throws(SecAggError) {
        try expect(.sharing, "shares from '\(silo)'")
        guard keys[silo] != nil else { throw SecAggError("silo '\(silo)' did not advertise keys this round") }
        guard !sharers.contains(silo) else { throw SecAggError("silo '\(silo)' already sent its shares") }
        let recipients = shares.map(\.to)
        let expected = Set(keys.keys.filter { $0 != silo && parameters.adjacent(silo, $0) })
        guard shares.allSatisfy({ $0.from == silo }), Set(recipients).count == shares.count, Set(recipients) == expected
        else { throw SecAggError("shares from '\(silo)' must go to each advertised neighbour exactly once") }
        for share in shares { outbox[share.to, default: []].append(share) }
        sharers.insert(silo)
    }

    /// Returns, per silo that shared, the bundles addressed to it by the other silos that shared.
    public mutating func endSharing() throws(SecAggError) -> [String: [EncryptedShare]] {
        try expect(.sharing, "closing key sharing")
        try requireQuorum(sharers.count, "shared keys")
        phase = .collecting
        var out = [String: [EncryptedShare]]()
        for silo in sharers { out[silo] = (outbox[silo] ?? []).filter { sharers.contains($0.from) } }
        outbox = [:]
        return out
    }

    // Round 2
    public mutating func receiveMaskedInput(from silo: String, context: [UInt8], _ masked: [UInt32]) throws(SecAggError) {
        guard context == parameters.context else {
            throw SecAggError("masked input from '\(silo)' is for another round")
        }
        try expect(.collecting, "masked input from '\(silo)'")
        guard sharers.contains(silo) else { throw SecAggError("silo '\(silo)' did not share keys this round") }
        guard !maskedFrom.contains(silo) else { throw SecAggError("silo '\(silo)' already sent its masked input") }
        guard masked.count == parameters.length else {
            throw SecAggError("masked input from '\(silo)' has \(masked.count) values, the round expects \(parameters.length)")
        }
        sum.addModular(masked)
        maskedFrom.insert(silo)
    }

    public mutating func endCollection() throws(SecAggError) -> [String] {
        try expect(.collecting, "closing input collection")
        try requireQuorum(maskedFrom.count, "sent masked inputs")
        survivors = maskedFrom.sorted()
        phase = .checking
        return survivors
    }

    // Round 3
    public mutating func receiveSurvivorSignature(from silo: String, _ signature: [UInt8]) throws(SecAggError) {
        try expect(.checking, "survivor signature from '\(silo)'")
        guard maskedFrom.contains(silo), let identity = directory[silo] else {
            throw SecAggError("silo '\(silo)' is not a survivor")
        }
        guard Ed25519.verify(signature: signature, message: parameters.signedSurvivors(survivors), publicKey: identity) else {
            throw SecAggError("survivor-list signature of '\(silo)' is invalid")
        }
        signatures[silo] = signature
    }

    public mutating func endConsistencyCheck() throws(SecAggError) -> [String: [UInt8]] {
        try expect(.checking, "closing the consistency check")
        try requireQuorum(signatures.count, "confirmed the survivor list")
        phase = .unmasking
        return signatures
    }

    // Round 4
    public mutating func receiveUnmasking(_ response: UnmaskingResponse) throws(SecAggError) {
        try expect(.unmasking, "unmasking shares from '\(response.silo)'")
        guard signatures[response.silo] != nil else { throw SecAggError("silo '\(response.silo)' did not confirm the survivors") }
        guard responses[response.silo] == nil else { throw SecAggError("silo '\(response.silo)' already sent its unmasking shares") }
        let survivorSet = Set(survivors)
        guard Set(response.selfMaskShares.keys).isSubset(of: survivorSet),
              Set(response.maskKeyShares.keys).isSubset(of: sharers.subtracting(survivorSet))
        else { throw SecAggError("unmasking shares from '\(response.silo)' do not match the survivor list") }
        responses[response.silo] = response
    }

    /// Removes every mask and returns the modular sum of the survivors' inputs.
    public mutating func finish() throws(SecAggError) -> (sum: [UInt32], survivors: [String]) {
        try expect(.unmasking, "finishing")
        try requireQuorum(responses.count, "sent unmasking shares")
        var result = sum
        let t = parameters.threshold
        do throws(CryptoError) {
            var terms = [MaskGenerator.Term]()
            for u in survivors {
                let shares = responses.values.compactMap { $0.selfMaskShares[u] }
                let seed = try Shamir.combine(shares, threshold: t)
                terms.append(MaskGenerator.Term(seed: try SelfMask.seed(seed, context: parameters.context), sign: -1))
            }
            for v in sharers.subtracting(survivors).sorted() {
                let shares = responses.values.compactMap { $0.maskKeyShares[v] }
                let dropped = try X25519KeyPair(secretKey: Shamir.combine(shares, threshold: t))
                guard dropped.publicKey == keys[v]?.maskKey else {
                    throw CryptoError("reconstructed mask key of '\(v)' does not match its advertised key")
                }
                for u in survivors where parameters.adjacent(u, v) {
                    let seed = try PairwiseMask.seed(secret: dropped, peerKey: keys[u]!.maskKey, context: parameters.context)
                    // u added +mask when u < v, −mask otherwise: undo it.
                    terms.append(MaskGenerator.Term(seed: seed, sign: u < v ? -1 : 1))
                }
            }
            try MaskGenerator.apply(terms, kind: parameters.prg, to: &result, threads: threads)
        } catch {
            phase = .aborted("unmasking failed: \(error.message)")
            throw SecAggError("round aborted: unmasking failed: \(error.message)")
        }
        phase = .finished
        return (result, survivors)
    }
}
