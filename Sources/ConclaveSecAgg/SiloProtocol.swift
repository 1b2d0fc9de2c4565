public import ConclaveCrypto

/// The silo's side of secure aggregation as a pure state machine: each method takes what the coordinator
/// relayed and returns what to send back. It keeps its own secrets and refuses anything that would let the
/// coordinator learn its input: bad signatures, tampered or replayed shares, survivor lists not signed by
/// at least t silos, and any request for both of one silo's shares.
public struct SecAggSilo: Sendable {
    public let id: String
    public let parameters: SecAggParameters
    private let identity: Ed25519KeyPair
    /// Long-term Ed25519 public keys of the federation's silos (enrolment), by silo id.
    private let directory: [String: [UInt8]]
    private let encryptionPair = X25519KeyPair()
    private let maskPair = X25519KeyPair()
    private let selfMaskSeed = SecretBytes(random: 32)
    /// Seeds the Shamir polynomials, so that a silo resuming an attempt after a coordinator restart re-derives
    /// exactly the shares it handed out (its own held share must match its neighbours').
    private let splitSeed = SecretBytes(random: 32)
    private var phase = Phase.created
    private var neighbours: [String: KeyAdvertisement] = [:]
    /// Decrypted shares held for others: (self-mask seed share, mask-key share) by owner.
    private var heldShares: [String: (seed: Shamir.Share, key: Shamir.Share)] = [:]
    /// Per neighbour, agreed in round 1 so masking (round 2) is only keystream work: the key its share
    /// bundles are encrypted under, and the seed of the pairwise mask with it.
    private var channelKeys: [String: [UInt8]] = [:]
    private var pairwiseSeeds: [String: [UInt8]] = [:]
    private var sharers: Set<String> = []
    private var survivors: [String] = []
    /// Threads used to expand masks.
    public var threads = 1

    enum Phase { case created, advertised, shared, masked, checked, done }

    public init(id: String, identity: Ed25519KeyPair, directory: [String: [UInt8]], parameters: SecAggParameters) {
        self.id = id
        self.identity = identity
        self.directory = directory
        self.parameters = parameters
    }

    /// Round 0: fresh per-round X25519 keys, signed with the identity key.
    public mutating func advertiseKeys() -> KeyAdvertisement {
        phase = .advertised
        let signature = identity.sign(parameters.signedKeys(id, encryptionPair.publicKey, maskPair.publicKey))
        return KeyAdvertisement(silo: id, encryptionKey: encryptionPair.publicKey, maskKey: maskPair.publicKey,
                                signature: signature)
    }

    /// Round 1: checks every advertisement, then sends each neighbour its encrypted shares of this silo's
    /// self-mask seed and mask secret key.
    public mutating func shareKeys(_ advertisements: [KeyAdvertisement]) throws(SecAggError) -> [EncryptedShare] {
        guard phase == .advertised else { throw SecAggError("\(id): keys must be advertised before sharing") }
        var byID = [String: KeyAdvertisement]()
        for ad in advertisements where parameters.adjacent(id, ad.silo) {
            guard let identityKey = directory[ad.silo] else { throw SecAggError("\(id): unknown silo '\(ad.silo)' in key list") }
            guard byID[ad.silo] == nil else { throw SecAggError("\(id): silo '\(ad.silo)' advertised twice") }
            guard Ed25519.verify(signature: ad.signature, message: parameters.signedKeys(ad.silo, ad.encryptionKey, ad.maskKey),
                                 publicKey: identityKey) else {
                throw SecAggError("\(id): key advertisement of silo '\(ad.silo)' has a bad signature")
            }
            byID[ad.silo] = ad
        }
        guard byID[id]?.maskKey == maskPair.publicKey, byID[id]?.encryptionKey == encryptionPair.publicKey else {
            throw SecAggError("\(id): the key list does not carry this silo's own keys")
        }
        guard byID.count >= parameters.threshold else {
            throw SecAggError("\(id): only \(byID.count) neighbours advertised keys, fewer than the threshold \(parameters.threshold)")
        }
        neighbours = byID
        let order = byID.keys.sorted()
        do {
            var polynomials = ChaChaDRBG(seed: splitSeed.bytes)
            let seedShares = try Shamir.split(selfMaskSeed.bytes, threshold: parameters.threshold, shares: order.count,
                                              using: &polynomials)
            let keyShares = try Shamir.split(maskPair.secretKeyBytes, threshold: parameters.threshold, shares: order.count,
                                             using: &polynomials)
            var out = [EncryptedShare]()
            for (i, peer) in order.enumerated() {
                let bundle = ShareBundle(owner: id, holder: peer, seed: seedShares[i], key: keyShares[i]).encoded
                if peer == id {
                    heldShares[id] = (seedShares[i], keyShares[i])
                    continue
                }
                let key = try channelKey(with: byID[peer]!)
                channelKeys[peer] = key
                pairwiseSeeds[peer] = try PairwiseMask.seed(secret: maskPair, peerKey: byID[peer]!.maskKey,
                                                            context: parameters.context)
                out.append(EncryptedShare(from: id, to: peer, ciphertext: try XChaCha20Poly1305.seal(
                    bundle, key: key, associatedData: parameters.shareAssociatedData(from: id, to: peer))))
            }
            phase = .shared
            return out
        } catch {
            throw SecAggError("\(id): sharing keys failed: \(error.message)")
        }
    }

    private func channelKey(with peer: KeyAdvertisement) throws(CryptoError) -> [UInt8] {
        try BLAKE2b.deriveKey(sharedSecret: encryptionPair.sharedSecret(with: peer.encryptionKey),
                              publicKeyA: encryptionPair.publicKey, publicKeyB: peer.encryptionKey,
                              context: Array("shares".utf8) + parameters.context)
    }

    /// Round 2: takes the share bundles addressed to this silo (their senders are the silos that completed
    /// round 1), and returns its input masked with its self mask and a pairwise mask per such sender.
    public mutating func maskInput(_ input: [UInt32], received: [EncryptedShare]) throws(SecAggError) -> [UInt32] {
        guard phase == .shared else { throw SecAggError("\(id): shares must be sent before masking") }
        guard input.count == parameters.length else {
            throw SecAggError("\(id): input has \(input.count) values, the round expects \(parameters.length)")
        }
        var senders: Set<String> = [id]
        for share in received {
            guard share.to == id else { throw SecAggError("\(id): received a share addressed to '\(share.to)'") }
            guard let peer = neighbours[share.from], share.from != id else {
                throw SecAggError("\(id): received a share from '\(share.from)', who advertised no keys")
            }
            guard !senders.contains(share.from) else { throw SecAggError("\(id): two shares from '\(share.from)'") }
            let plain: [UInt8]
            do {
                plain = try XChaCha20Poly1305.open(share.ciphertext, key: channelKeys[peer.silo]!,
                                                   associatedData: parameters.shareAssociatedData(from: share.from, to: id))
            } catch {
                throw SecAggError("\(id): share from '\(share.from)' failed authentication (tampered or replayed)")
            }
            guard let bundle = ShareBundle(decoding: plain), bundle.owner == share.from, bundle.holder == id else {
                throw SecAggError("\(id): share from '\(share.from)' is malformed or names the wrong silos")
            }
            heldShares[share.from] = (bundle.seed, bundle.key)
            senders.insert(share.from)
        }
        guard senders.count >= parameters.threshold else {
            throw SecAggError("\(id): only \(senders.count) silos shared keys, fewer than the threshold \(parameters.threshold)")
        }
        sharers = senders
        var masked = input
        do {
            var terms = [MaskGenerator.Term(seed: try SelfMask.seed(selfMaskSeed.bytes, context: parameters.context), sign: 1)]
            for peer in senders.sorted() where peer != id {
                terms.append(MaskGenerator.Term(seed: pairwiseSeeds[peer]!, sign: id < peer ? 1 : -1))
            }
            try MaskGenerator.apply(terms, kind: parameters.prg, to: &masked, threads: threads)
        } catch {
            throw SecAggError("\(id): masking failed: \(error.message)")
        }
        phase = .masked
        return masked
    }

    /// Round 3 (consistency check): signs the list of silos whose masked inputs the coordinator says it holds.
    public mutating func signSurvivors(_ list: [String]) throws(SecAggError) -> [UInt8] {
        guard phase == .masked else { throw SecAggError("\(id): nothing masked yet") }
        let set = Set(list)
        let local = set.filter { parameters.adjacent(id, $0) }
        guard set.count == list.count, set.contains(id), local.isSubset(of: sharers) else {
            throw SecAggError("\(id): survivor list must hold distinct silos that shared keys, this one included")
        }
        guard local.count >= parameters.threshold else {
            throw SecAggError("\(id): only \(local.count) survivors among its neighbours, fewer than the threshold \(parameters.threshold); aborting")
        }
        survivors = list.sorted()
        phase = .checked
        return identity.sign(parameters.signedSurvivors(survivors))
    }

    /// Round 4: given at least t valid signatures on the same survivor list, reveals self-mask seed shares of
    /// survivors and mask-key shares of silos that shared but did not survive.
    public mutating func unmask(signatures: [String: [UInt8]]) throws(SecAggError) -> UnmaskingResponse {
        guard phase == .checked else { throw SecAggError("\(id): the survivor list was not signed yet") }
        let message = parameters.signedSurvivors(survivors)
        var valid = 0
        for (silo, signature) in signatures {
            guard survivors.contains(silo), let key = directory[silo] else {
                throw SecAggError("\(id): signature from '\(silo)', who is not a survivor")
            }
            guard Ed25519.verify(signature: signature, message: message, publicKey: key) else {
                throw SecAggError("\(id): survivor-list signature of '\(silo)' is invalid: the coordinator showed silos different lists")
            }
            if parameters.adjacent(id, silo) { valid += 1 }
        }
        guard valid >= parameters.threshold else {
            throw SecAggError("\(id): only \(valid) neighbours confirmed the survivor list, fewer than the threshold \(parameters.threshold)")
        }
        var response = UnmaskingResponse(silo: id, selfMaskShares: [:], maskKeyShares: [:])
        for owner in sharers {
            guard let shares = heldShares[owner] else { continue }
            if survivors.contains(owner) {
                response.selfMaskShares[owner] = shares.seed
            } else {
                response.maskKeyShares[owner] = shares.key
            }
        }
        phase = .done
        return response
    }
}

/// The plaintext of an encrypted share bundle: who made it, who holds it, and the two shares.
struct ShareBundle {
    var owner: String
    var holder: String
    var seed: Shamir.Share
    var key: Shamir.Share

    init(owner: String, holder: String, seed: Shamir.Share, key: Shamir.Share) {
        self.owner = owner
        self.holder = holder
        self.seed = seed
        self.key = key
    }

    var encoded: [UInt8] {
        frame(Array(owner.utf8)) + frame(Array(holder.utf8)) + Self.encode(seed) + Self.encode(key)
    }

    static func encode(_ s: Shamir.Share) -> [UInt8] {
        var out = [UInt8]()
        for v in [s.x, UInt64(s.secretLength), UInt64(s.values.count)] + s.values {
            withUnsafeBytes(of: v.littleEndian) { out += $0 }
        }
        return out
    }

    init?(decoding bytes: [UInt8]) {
        var r = Reader(bytes: bytes)
        guard let o = r.string(), let h = r.string(), let s = r.share(), let k = r.share(), r.atEnd else { return nil }
        self.init(owner: o, holder: h, seed: s, key: k)
    }

    struct Reader {
        var bytes: [UInt8]
        var i = 0
        var atEnd: Bool { i == bytes.count }

        mutating func u32() -> Int? {
            guard i + 4 <= bytes.count else { return nil }
            defer { i += 4 }
            return Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        }

        mutating func u64() -> UInt64? {
            guard i + 8 <= bytes.count else { return nil }
            defer { i += 8 }
            return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * $1) }
        }

        mutating func string() -> String? {
            guard let n = u32(), i + n <= bytes.count else { return nil }
            defer { i += n }
            return String(decoding: bytes[i..<(i + n)], as: UTF8.self)
        }

        mutating func share() -> Shamir.Share? {
            guard let x = u64(), let length = u64(), let count = u64(), count <= 64 else { return nil }
            var values = [UInt64]()
            for _ in 0..<count {
                guard let v = u64() else { return nil }
                values.append(v)
            }
            return Shamir.Share(x: x, values: values, secretLength: Int(length))
        }
    }
}

/// Seeds of the two kinds of mask, derived so both ends (or the coordinator, after reconstruction) agree.
enum SelfMask {
    static func seed(_ secret: [UInt8], context: [UInt8]) throws(CryptoError) -> [UInt8] {
        try BLAKE2b.hash([Array("self-mask".utf8), frame(secret), frame(context)], length: 32)
    }
}

enum PairwiseMask {
    static func seed(secret: X25519KeyPair, peerKey: [UInt8], context: [UInt8]) throws(CryptoError) -> [UInt8] {
        try BLAKE2b.deriveKey(sharedSecret: secret.sharedSecret(with: peerKey), publicKeyA: secret.publicKey,
                              publicKeyB: peerKey, context: Array("pairwise-mask".utf8) + context)
    }
}
