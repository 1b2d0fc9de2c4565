public import ConclaveFederation
import ConclavePrivacy
public import ConclaveSecAgg
import SwiftProtobuf
public import ConclaveWire
import Foundation

// Secure-aggregation messages between their wire form (conclave.proto) and the protocol's value types.
// Every decode checks what the protocol cannot: sizes and names, so a malformed message is a clear error.

extension SecureTask {
    public var proto: Conclave_V1_SecureTask {
        var p = Conclave_V1_SecureTask()
        p.context = Data(context)
        p.threshold = UInt32(threshold)
        p.prg = prg.rawValue
        p.members = members
        p.degree = UInt32(degree ?? 0)
        p.graphSeed = Data(graphSeed)
        p.identityKeys = directory.mapValues { Data($0) }
        p.clipNorm = clipNorm
        p.weight = weight
        p.precisionBits = UInt32(precisionBits)
        p.clipBit = clipBit
        if let distributed {
            p.distributed = .with {
                $0.granularity = distributed.granularity
                $0.localStddev = distributed.localStddev
                $0.beta = distributed.beta
                $0.rotationSeed = Data(distributed.rotationSeed)
            }
        }
        return p
    }

    public init(proto p: Conclave_V1_SecureTask, parameterCount: Int) throws(FederationError) {
        guard let prg = MaskGenerator.Kind(rawValue: p.prg) else {
            throw FederationError(.invalidArgument, "secure task names an unknown mask generator '\(p.prg)' (known: aes, chacha)")
        }
        guard p.threshold >= 2, Int(p.threshold) <= p.members.count else {
            throw FederationError(.invalidArgument,
                "secure task threshold \(p.threshold) must be at least 2 and at most the \(p.members.count) members")
        }
        guard Set(p.identityKeys.keys) == Set(p.members), p.identityKeys.values.allSatisfy({ $0.count == 32 }) else {
            throw FederationError(.invalidArgument, "secure task must carry one 32-byte identity key per member")
        }
        guard p.clipNorm > 0, p.clipNorm.isFinite, p.weight > 0, p.weight <= 1 else {
            throw FederationError(.invalidArgument,
                "secure task needs a positive clip norm and a weight in (0, 1], got \(p.clipNorm) and \(p.weight)")
        }
        self.init(context: Array(p.context), threshold: Int(p.threshold), prg: prg, members: p.members.sorted(),
                  degree: p.degree == 0 ? nil : Int(p.degree), graphSeed: Array(p.graphSeed),
                  directory: p.identityKeys.mapValues { Array($0) }, clipNorm: p.clipNorm, weight: p.weight,
                  precisionBits: Int(p.precisionBits), parameterCount: parameterCount)
        clipBit = p.clipBit
        _ = try encoding()  // refuses a precision no encoding can give
        if p.hasDistributed {
            let d = p.distributed
            guard let mechanism = DistributedDiscreteGaussian(clipNorm: p.clipNorm, granularity: d.granularity,
                                                              localStddev: d.localStddev, beta: d.beta,
                                                              rotationSeed: Array(d.rotationSeed), dimension: parameterCount) else {
                throw FederationError(.invalidArgument,
                    "secure task carries invalid distributed noise (granularity \(d.granularity), share \(d.localStddev), β \(d.beta), seed of \(d.rotationSeed.count) bytes)")
            }
            distributed = mechanism
        }
    }
}

extension KeyAdvertisement {
    public var proto: Conclave_V1_KeyAdvertisement {
        .with {
            $0.siloID = silo
            $0.encryptionKey = Data(encryptionKey)
            $0.maskKey = Data(maskKey)
            $0.signature = Data(signature)
        }
    }

    /// Keys as they arrive: the label must be a well-formed id and every key and signature its exact size.
    public init(checking p: Conclave_V1_KeyAdvertisement) throws(FederationError) {
        let silo = try WireCheck.name(p.siloID, "silo id of a key advertisement")
        try WireCheck.bytes(p.encryptionKey.count, "encryption key of silo '\(silo)'", allowed: [32])
        try WireCheck.bytes(p.maskKey.count, "mask key of silo '\(silo)'", allowed: [32])
        try WireCheck.bytes(p.signature.count, "key signature of silo '\(silo)'", allowed: [64])
        self.init(proto: p)
    }

    public init(proto p: Conclave_V1_KeyAdvertisement) {
        self.init(silo: p.siloID, encryptionKey: Array(p.encryptionKey), maskKey: Array(p.maskKey),
                  signature: Array(p.signature))
    }
}

extension EncryptedShare {
    public var proto: Conclave_V1_EncryptedShare {
        .with {
            $0.fromSilo = from
            $0.toSilo = to
            $0.ciphertext = Data(ciphertext)
        }
    }

    /// A share bundle as it arrives: well-formed ids and a bounded ciphertext.
    public init(checking p: Conclave_V1_EncryptedShare) throws(FederationError) {
        try WireCheck.name(p.fromSilo, "sender of a share bundle")
        try WireCheck.name(p.toSilo, "receiver of a share bundle")
        guard p.ciphertext.count <= 4096 else {
            throw FederationError(.invalidArgument, "share bundle ciphertext is \(p.ciphertext.count) bytes (at most 4096)")
        }
        self.init(proto: p)
    }

    public init(proto p: Conclave_V1_EncryptedShare) {
        self.init(from: p.fromSilo, to: p.toSilo, ciphertext: Array(p.ciphertext))
    }
}

extension Shamir.Share {
    public var proto: Conclave_V1_ShamirShare {
        .with {
            $0.x = x
            $0.values = values
            $0.secretLength = UInt32(secretLength)
        }
    }

    public init(proto p: Conclave_V1_ShamirShare) throws(FederationError) {
        guard p.x >= 1, p.values.count <= 64, p.secretLength <= 7 * UInt32(p.values.count) else {
            throw FederationError(.invalidArgument, "malformed Shamir share (x \(p.x), \(p.values.count) values)")
        }
        self.init(x: p.x, values: p.values, secretLength: Int(p.secretLength))
    }
}

extension UnmaskingResponse {
    public var proto: Conclave_V1_UnmaskingShares {
        .with {
            $0.selfMaskShares = selfMaskShares.mapValues(\.proto)
            $0.maskKeyShares = maskKeyShares.mapValues(\.proto)
        }
    }

    public init(silo: String, proto p: Conclave_V1_UnmaskingShares) throws(FederationError) {
        var seeds = [String: Shamir.Share](), keys = [String: Shamir.Share]()
        for (k, v) in p.selfMaskShares { seeds[try WireCheck.name(k, "unmasking share's silo")] = try Shamir.Share(proto: v) }
        for (k, v) in p.maskKeyShares { keys[try WireCheck.name(k, "unmasking share's silo")] = try Shamir.Share(proto: v) }
        self.init(silo: silo, selfMaskShares: seeds, maskKeyShares: keys)
    }
}

extension SecureRound.Reply {
    /// A phase reply as the silo receives it (nil for messages that are not phase replies).
    public init?(proto m: Conclave_V1_SecureServerMessage) {
        switch m.kind {
        case .keys(let list): self = .keys(list.advertisements.map(KeyAdvertisement.init(proto:)))
        case .shares(let bundle): self = .shares(bundle.shares.map(EncryptedShare.init(proto:)))
        case .survivors(let list): self = .survivors(list.siloIds)
        case .signatures(let s): self = .signatures(s.signatures.mapValues { Array($0) })
        case .result, .resumeState, .none: return nil
        }
    }

    public var proto: Conclave_V1_SecureServerMessage {
        switch self {
        case .keys(let ads): .with { $0.keys = .with { $0.advertisements = ads.map(\.proto) } }
        case .shares(let shares): .with { $0.shares = .with { $0.shares = shares.map(\.proto) } }
        case .survivors(let list): .with { $0.survivors = .with { $0.siloIds = list } }
        case .signatures(let sigs): .with { $0.signatures = .with { $0.signatures = sigs.mapValues { Data($0) } } }
        }
    }
}
