public import ConclaveLearning
import ConclaveTensor
public import ConclavePrivacy

/// DP-SGD (Abadi et al., CCS 2016) on one silo's records: each step takes a Poisson sample (`PoissonSample`:
/// every record in independently with probability ≤ q = batch/N), clips each example's gradient to L2 ≤ C, adds
/// N(0, (σC)²) to the sum, and divides by the expected batch qN (a fixed denominator, so one record's
/// influence stays bounded). The guarantee is about the silo's own records and holds whatever the coordinator
/// does; `Accountant` turns (q, σ, steps) into ε. The per-step noise is `SummedGaussianNoise` (a documented
/// floating-point-safe construction fast enough for every step; see there).
public enum PrivateTrainer {
    public struct Result: Sendable {
        public var training: TrainingResult
        public var samplingRate: Double
        public var noiseMultiplier: Double
        public var clippedFraction: Double
    }

    public static func train(spec: ModelSpec, parameters: [Float], data: Dataset, config: TrainingConfig,
                             clipNorm: Double, noiseMultiplier: Double) throws(DataError) -> Result {
        guard parameters.count == spec.parameterCount, data.featureCount == spec.inputFeatures, data.count > 0 else {
            throw DataError("private training: the data (\(data.featureCount) features, \(data.count) records) does not fit \(spec.summary)")
        }
        // The same checks as `Trainer`'s: a label past the model's classes would index past its outputs.
        guard data.classCount <= spec.classCount else {
            throw DataError("data has \(data.classCount) classes, \(spec.summary) predicts \(spec.classCount)")
        }
        guard config.batchSize > 0, config.localEpochs > 0 else {
            throw DataError("batch size and local epochs must be positive")
        }
        guard clipNorm > 0, clipNorm.isFinite, noiseMultiplier >= 0, (noiseMultiplier * clipNorm).isFinite else {
            throw DataError("private training needs a positive, finite clip norm and a non-negative, finite noise multiplier (got \(clipNorm), \(noiseMultiplier))")
        }
        let n = data.count, d = data.featureCount
        let q = samplingRate(batchSize: config.batchSize, examples: n)
        var params = parameters
        var network = Network(spec: spec)
        var optimizer = SGD(learningRate: Float(config.learningRate), momentum: Float(config.momentum))
        // Each step's sample is drawn a step ahead (samples are independent of training), so its rows can be
        // on their way from memory while the step before computes.
        var sample = PoissonSample(count: n, rate: q), next = PoissonSample(count: n, rate: q)
        next.draw()
        var noiseBits = NoiseRandom()
        let noise = noiseMultiplier > 0 ? SummedGaussianNoise(standardDeviation: noiseMultiplier * clipNorm) : nil
        var grad = [Float](repeating: 0, count: params.count)
        var xb = [Float](), yb = [Int32](), nb = [Float]()
        let scale = 1 / (q * Double(n))
        var lossSum = 0.0, taken = 0, clipped = 0, seen = 0
        for _ in 0..<steps(batchSize: config.batchSize, examples: n, epochs: config.localEpochs) {
            swap(&sample, &next)
            next.draw()
            let batch = sample.size
            // Gather the sampled rows (buffers grown, never shrunk: a Poisson batch varies around qN).
            if yb.count < batch {
                xb = [Float](repeating: 0, count: batch * d * 5 / 4)
                yb = [Int32](repeating: 0, count: batch * 5 / 4)
                nb = [Float](repeating: 0, count: batch * 5 / 4)
            }
            data.features.withUnsafeBufferPointer { f in
                xb.withUnsafeMutableBufferPointer { x in
                    sample.members.withUnsafeBufferPointer { members in
                        RowGather.gather(rows: UnsafeBufferPointer(rebasing: members[0..<batch]), from: f.baseAddress!,
                                         width: d, into: x.baseAddress!)
                    }
                }
            }
            // ‖xᵢ‖² of each sampled row, just gathered and still in cache (the first layer's per-example norms
            // need nothing else from the input): cheaper than a pass over all N records from memory up front.
            xb.withUnsafeBufferPointer { x in
                for j in 0..<batch {
                    yb[j] = data.labels[sample.members[j]]
                    nb[j] = BLAS.dot(d, x.baseAddress! + j * d, x.baseAddress! + j * d)
                }
            }
            data.features.withUnsafeBufferPointer { f in
                next.members.withUnsafeBufferPointer { members in
                    RowGather.prefetch(rows: UnsafeBufferPointer(rebasing: members[0..<next.size]), from: f.baseAddress!, width: d)
                }
            }
            var loss: Float = 0, clippedHere = 0
            if batch == 0 {
                for j in grad.indices { grad[j] = 0 }  // an empty sample still gets its noise
            } else {
                (loss, clippedHere) = params.withUnsafeBufferPointer { p in
                    xb.withUnsafeBufferPointer { x in
                        yb.withUnsafeBufferPointer { y in
                            grad.withUnsafeMutableBufferPointer { g in
                                nb.withUnsafeBufferPointer { norms in
                                    network.clippedGradientSum(params: p.baseAddress!, x: x.baseAddress!, labels: y.baseAddress!,
                                                               batch: batch, clipNorm: Float(clipNorm), grad: g.baseAddress!,
                                                               inputNorms: norms.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
            // v ← μv + (Σ clipped + N(0, σ²C²)) / qN in one pass (as SGD keeps it: u ← u + gain·…), then p ← p − ηv.
            let count = params.count
            params.withUnsafeMutableBufferPointer { p in
                grad.withUnsafeBufferPointer { g in
                    _ = optimizer.step(params: p.baseAddress!, count: count) { v, decay, gain in
                        if let noise {
                            noise.noised(g.baseAddress!, count: count, scaledBy: scale * Double(gain), into: v, decay: decay,
                                         using: &noiseBits)
                        } else {
                            let factor = Float(scale * Double(gain))
                            for j in 0..<count { v[j] = decay * v[j] + g[j] * factor }
                        }
                        return 0
                    }
                }
            }
            if batch > 0 { lossSum += Double(loss) / Double(batch) }
            clipped += clippedHere
            seen += batch
            taken += 1
        }
        return Result(training: TrainingResult(parameters: params, meanLoss: taken > 0 ? lossSum / Double(taken) : 0,
                                               steps: taken, examples: n),
                      samplingRate: q, noiseMultiplier: noiseMultiplier,
                      clippedFraction: seen > 0 ? Double(clipped) / Double(seen) : 0)
    }

    /// Each record's chance of being in a step's Poisson sample: batch/N (1 when the batch covers the data).
    public static func samplingRate(batchSize: Int, examples: Int) -> Double {
        min(1, Double(batchSize) / Double(examples))
    }

    /// Steps in `epochs` epochs: an epoch is ⌈1/q⌉ steps, so each record is expected in one step per epoch.
    public static func steps(batchSize: Int, examples: Int, epochs: Int) -> Int {
        epochs * Int((1 / samplingRate(batchSize: batchSize, examples: examples)).rounded(.up))
    }
}
