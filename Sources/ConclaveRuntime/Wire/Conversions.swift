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
    public init(proto p: Conclave_V1_SiloDescription) {
        self.init(id: p.siloID, examples: p.numExamples, features: Int(p.numFeatures), classes: Int(p.numClasses),
                  dataset: p.dataset, identityKey: Array(p.identityKey))
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

extension FederationError {
    /// The gRPC status a domain error becomes at the edge.
    public var rpcError: RPCError {
        let code: RPCError.Code = switch self.code {
        case .invalidArgument: .invalidArgument
        case .failedPrecondition: .failedPrecondition
        case .permissionDenied: .permissionDenied
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        }
        return RPCError(code: code, message: message)
    }
}
