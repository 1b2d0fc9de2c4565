public import ConclaveFederation
public import ConclaveLearning
public import ConclaveWire
public import GRPCCore
import Foundation

extension ModelSpec {
    public var proto: Conclave_V1_ModelSpec {
        var p = Conclave_V1_ModelSpec()
        p.architecture = architecture.rawValue
        p.inputFeatures = UInt32(inputFeatures)
        p.hidden = hidden.map { UInt32($0) }
        p.numClasses = UInt32(classCount)
        return p
    }

    public init(proto p: Conclave_V1_ModelSpec) throws(FederationError) {
        guard let arch = Architecture(rawValue: p.architecture) else {
            throw FederationError(.invalidArgument, "unknown model architecture '\(p.architecture)' (known: mlp, logreg)")
        }
        do {
            try self.init(architecture: arch, inputFeatures: Int(p.inputFeatures), hidden: p.hidden.map { Int($0) },
                          classCount: Int(p.numClasses))
        } catch {
            throw FederationError(.invalidArgument, error.message)
        }
    }
}

extension TrainingConfig {
    public var proto: Conclave_V1_TrainingConfig {
        var p = Conclave_V1_TrainingConfig()
        p.localEpochs = UInt32(localEpochs)
        p.batchSize = UInt32(batchSize)
        p.learningRate = learningRate
        p.optimizer = optimizer.rawValue
        p.momentum = momentum
        p.seed = seed
        return p
    }

    public init(proto p: Conclave_V1_TrainingConfig) throws(FederationError) {
        guard let opt = OptimizerKind(rawValue: p.optimizer) else {
            throw FederationError(.invalidArgument, "unknown optimizer '\(p.optimizer)' (known: sgd, adam)")
        }
        guard p.localEpochs >= 1, p.batchSize >= 1, p.learningRate > 0 else {
            throw FederationError(.invalidArgument, "training config needs local_epochs, batch_size and learning_rate above 0")
        }
        self.init(localEpochs: Int(p.localEpochs), batchSize: Int(p.batchSize), learningRate: p.learningRate,
                  optimizer: opt, momentum: p.momentum, seed: p.seed)
    }
}

extension SiloInfo {
    /// A silo's description as it arrives from the wire, every field checked against its range (the id's
    /// length and characters, counts that must fit the database's 64-bit integers, the key's size) before
    /// anything else sees it.
    public init(proto p: Conclave_V1_SiloDescription) throws(FederationError) {
        let id = try WireCheck.name(p.siloID, "silo id")
        let examples = try WireCheck.count(p.numExamples, "num_examples of silo '\(id)'", max: WireCheck.maxExamples)
        let features = try WireCheck.count(UInt64(p.numFeatures), "num_features of silo '\(id)'",
                                           max: UInt64(WireCheck.maxFeatures))
        let classes = try WireCheck.count(UInt64(p.numClasses), "num_classes of silo '\(id)'",
                                          max: UInt64(WireCheck.maxClasses))
        let dataset = try WireCheck.text(p.dataset, "dataset name of silo '\(id)'", maxBytes: WireCheck.maxNameBytes)
        try WireCheck.bytes(p.identityKey.count, "identity key of silo '\(id)'", allowed: [0, 32])
        self.init(id: id, examples: UInt64(examples), features: features, classes: classes, dataset: dataset,
                  identityKey: Array(p.identityKey))
    }

    public var proto: Conclave_V1_SiloDescription {
        var p = Conclave_V1_SiloDescription()
        p.siloID = id
        p.numExamples = examples
        p.numFeatures = UInt32(features)
        p.numClasses = UInt32(classes)
        p.dataset = dataset
        p.identityKey = Data(identityKey)
        return p
    }
}

/// The one place a domain error becomes a gRPC status: services throw `FederationError` as it is.
extension FederationError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .failedPrecondition: .failedPrecondition
        case .permissionDenied: .permissionDenied
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        case .deadlineExceeded: .deadlineExceeded
        case .aborted: .aborted
        }
    }

    public var rpcErrorMessage: String { message }

    public var rpcError: RPCError { RPCError(code: rpcErrorCode, message: message) }
}

extension DeclineReason {
    public init?(proto: Conclave_V1_DeclineReason) {
        switch proto {
        case .secureAggregationRequired: self = .secureAggregationRequired
        case .aggregateTooSmall: self = .aggregateTooSmall
        case .privacyMode: self = .privacyMode
        case .alreadyMasked: self = .alreadyMasked
        case .privacyBudget: self = .privacyBudget
        case .unspecified, .UNRECOGNIZED: return nil
        }
    }

    public var proto: Conclave_V1_DeclineReason {
        switch self {
        case .secureAggregationRequired: .secureAggregationRequired
        case .aggregateTooSmall: .aggregateTooSmall
        case .privacyMode: .privacyMode
        case .alreadyMasked: .alreadyMasked
        case .privacyBudget: .privacyBudget
        }
    }
}
