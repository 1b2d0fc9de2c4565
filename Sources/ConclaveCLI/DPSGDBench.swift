import ArgumentParser
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveTensor
import Foundation

/// One private (DP-SGD) epoch against one plain epoch of the same model on the same records, in one process:
/// issue 13 asks for a ratio of at most 1.3 from batch 256 up. Also times the noise alone (the part DP-SGD adds
/// per step whatever the batch) and the private epoch without noise (sampling and clipping).
struct DPSGDBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dpsgd", abstract: "Time a DP-SGD epoch vs. a plain one.")
    @Option(help: "Hidden widths, comma-separated.") var hidden = "128"
    @Option(help: "Mini-batch size (DP-SGD: the expected Poisson sample).") var batchSize = 256
    @Option(help: "Records (the first N of Fashion-MNIST's training set).") var examples = 12_000
    @Option(help: "Repetitions (the best is reported).") var repeats = 3
    @Option(help: "OpenBLAS threads.") var threads = 1
    @Option(help: "Directory holding Fashion-MNIST's IDX files.") var dataDir = "/usr/share/datasets/fashion-mnist"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        BLAS.setThreads(threads)
        let widths = hidden.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.allSatisfy({ $0 > 0 }) else { throw ValidationError("--hidden must be positive integers") }
        guard batchSize >= 1, repeats >= 1, threads >= 1, examples >= 1 else {
            throw ValidationError("--batch-size, --examples, --repeats and --threads must be at least 1")
        }
        let all = try IDX.dataset(imagesPath: dataDir + "/train-images-idx3-ubyte.gz",
                                  labelsPath: dataDir + "/train-labels-idx1-ubyte.gz")
        let data = all.subset(Array(0..<min(examples, all.count)))
        let spec = try ModelSpec(architecture: .mlp, inputFeatures: 784, hidden: widths, classCount: 10)
        let config = TrainingConfig(localEpochs: 1, batchSize: batchSize, learningRate: 0.1, momentum: 0.5)
        let initial = spec.initialParameters(seed: 1)
        let steps = PrivateTrainer.steps(batchSize: batchSize, examples: data.count, epochs: 1)
        var plain = Double.infinity, dp = Double.infinity, noise = Double.infinity, quiet = Double.infinity
        for _ in 0..<repeats {
            plain = min(plain, try time { _ = try Trainer.train(spec: spec, parameters: initial, data: data, config: config) })
            dp = min(dp, try time {
                _ = try PrivateTrainer.train(spec: spec, parameters: initial, data: data, config: config, clipNorm: 1,
                                             noiseMultiplier: 1)
            })
            quiet = min(quiet, try time {
                _ = try PrivateTrainer.train(spec: spec, parameters: initial, data: data, config: config, clipNorm: 1,
                                             noiseMultiplier: 0)
            })
            var values = [Float](repeating: 0, count: spec.parameterCount)
            var rng = NoiseRandom()
            let gaussian = SummedGaussianNoise(standardDeviation: 1)
            noise = min(noise, time { for _ in 0..<steps { gaussian.add(to: &values, using: &rng) } })
        }
        let result: [String: Any] = [
            "model": spec.summary, "examples": data.count, "batch_size": batchSize, "threads": threads, "steps": steps,
            "plain_epoch_seconds": plain, "private_epoch_seconds": dp, "noise_seconds": noise, "ratio": dp / plain,
            "private_without_noise_seconds": quiet, "noise_kernel": NoiseKernel.best.rawValue,
        ]
        if json { printJSON(result); return }
        print(String(format: "%@: one epoch over %d records, batch %d (%d DP-SGD steps), %d threads",
                     spec.summary, data.count, batchSize, steps, threads))
        print(String(format: "  plain SGD   %.3f s", plain))
        print(String(format: "  DP-SGD      %.3f s  (noise alone %.3f s, %@ kernel; sampling and clipping without noise %.3f s)",
                     dp, noise, NoiseKernel.best.rawValue, quiet))
        print(String(format: "  ratio       %.2f×", dp / plain))
    }

    func time(_ body: () throws -> Void) rethrows -> Double {
        let d = try ContinuousClock().measure(body)
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
