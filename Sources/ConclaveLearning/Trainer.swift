import ConclaveTensor

/// Local training hyper-parameters, as a run spec sets them for every silo.
public struct TrainingConfig: Sendable, Equatable, Codable {
    public var localEpochs: Int
    public var batchSize: Int
    public var learningRate: Double
    public var optimizer: OptimizerKind
    public var momentum: Double
    public var seed: UInt64

    public init(localEpochs: Int = 1, batchSize: Int = 32, learningRate: Double = 0.05,
                optimizer: OptimizerKind = .sgd, momentum: Double = 0.9, seed: UInt64 = 0) {
        self.localEpochs = localEpochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.momentum = momentum
        self.seed = seed
    }
}

public struct TrainingResult: Sendable {
    public var parameters: [Float]
    /// Mean mini-batch loss over all local steps.
    public var meanLoss: Double
    public var steps: Int
    public var examples: Int

    public init(parameters: [Float], meanLoss: Double, steps: Int, examples: Int) {
        self.parameters = parameters
        self.meanLoss = meanLoss
        self.steps = steps
        self.examples = examples
    }
}

/// Mini-batch training of a `ModelSpec` on one silo's data, with seeded shuffling each epoch.
public enum Trainer {
    public static func train(spec: ModelSpec, parameters: [Float], data: Dataset,
                             config: TrainingConfig) throws(DataError) -> TrainingResult {
        guard parameters.count == spec.parameterCount else {
            throw DataError("got \(parameters.count) parameters, \(spec.summary) has \(spec.parameterCount)")
        }
        guard data.featureCount == spec.inputFeatures else {
            throw DataError("data has \(data.featureCount) features, \(spec.summary) expects \(spec.inputFeatures)")
        }
        guard data.classCount <= spec.classCount else {
            throw DataError("data has \(data.classCount) classes, \(spec.summary) predicts \(spec.classCount)")
        }
        guard config.batchSize > 0, config.localEpochs > 0 else {
            throw DataError("batch size and local epochs must be positive")
        }
        var params = parameters
        var network = Network(spec: spec)
        var optimizer: any Optimizer = switch config.optimizer {
        case .sgd: SGD(learningRate: Float(config.learningRate), momentum: Float(config.momentum))
        case .adam: Adam(learningRate: Float(config.learningRate))
        }
        var rng = SeededGenerator(seed: config.seed)
        let d = data.featureCount
        let batchCap = min(config.batchSize, data.count)
        var xb = [Float](repeating: 0, count: batchCap * d)
        var yb = [Int32](repeating: 0, count: batchCap)
        var order = Array(0..<data.count)
        var lossSum = 0.0, steps = 0
        for _ in 0..<config.localEpochs {
            order.shuffle(using: &rng)
            var start = 0
            while start < order.count {
                let n = min(batchCap, order.count - start)
                data.features.withUnsafeBufferPointer { src in
                    order.withUnsafeBufferPointer { o in
                        xb.withUnsafeMutableBufferPointer { dst in
                            RowGather.gather(rows: UnsafeBufferPointer(rebasing: o[start..<start + n]), from: src.baseAddress!,
                                             width: d, into: dst.baseAddress!)
                        }
                        // The next step's rows start arriving while this step's sgemm runs.
                        RowGather.prefetch(rows: UnsafeBufferPointer(rebasing: o[start + n..<min(start + n + batchCap, o.count)]),
                                           from: src.baseAddress!, width: d)
                    }
                }
                for j in 0..<n { yb[j] = data.labels[order[start + j]] }
                let count = params.count
                let loss = params.withUnsafeMutableBufferPointer { p in
                    xb.withUnsafeBufferPointer { x in
                        yb.withUnsafeBufferPointer { y in
                            optimizer.step(params: p.baseAddress!, count: count) { grad, decay, gain in
                                network.lossAndGradient(params: p.baseAddress!, x: x.baseAddress!, labels: y.baseAddress!,
                                                        batch: n, grad: grad, decay: decay, gain: gain)
                            }
                        }
                    }
                }
                lossSum += Double(loss)
                steps += 1
                start += n
            }
        }
        return TrainingResult(parameters: params, meanLoss: steps > 0 ? lossSum / Double(steps) : 0,
                              steps: steps, examples: data.count)
    }
}
