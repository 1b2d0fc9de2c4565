public struct EvaluationResult: Sendable, Equatable {
    public var accuracy: Double
    public var loss: Double
    public var examples: Int
}

public enum Evaluator {
    /// Accuracy and mean cross-entropy of `parameters` on all of `data`, in batches of `batchSize`.
    public static func evaluate(spec: ModelSpec, parameters: [Float], data: Dataset,
                                batchSize: Int = 1000) throws(DataError) -> EvaluationResult {
        guard parameters.count == spec.parameterCount else {
            throw DataError("got \(parameters.count) parameters, \(spec.summary) has \(spec.parameterCount)")
        }
        guard data.featureCount == spec.inputFeatures, data.classCount <= spec.classCount else {
            throw DataError("evaluation data (\(data.featureCount) features, \(data.classCount) classes) does not fit \(spec.summary)")
        }
        var network = Network(spec: spec)
        var loss = 0.0, correct = 0
        let d = data.featureCount
        parameters.withUnsafeBufferPointer { p in
            data.features.withUnsafeBufferPointer { x in
                data.labels.withUnsafeBufferPointer { y in
                    var start = 0
                    while start < data.count {
                        let n = min(batchSize, data.count - start)
                        let r = network.evaluate(params: p.baseAddress!, x: x.baseAddress! + start * d,
                                                 labels: y.baseAddress! + start, batch: n)
                        loss += Double(r.loss)
                        correct += r.correct
                        start += n
                    }
                }
            }
        }
        let n = max(data.count, 1)
        return EvaluationResult(accuracy: Double(correct) / Double(n), loss: loss / Double(n), examples: data.count)
    }
}
