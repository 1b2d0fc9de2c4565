import ArgumentParser
import ConclaveFederation
import ConclaveLearning
import ConclaveTensor
import Foundation

/// One local epoch of an MLP on Fashion-MNIST, against the time the same sequence of cblas_sgemm calls takes
/// on its own (the floor any trainer built on BLAS can reach), measured in the same process.
struct TrainingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "training", abstract: "Time one local epoch vs. the sgemm floor.")
    @Option(help: "Hidden widths, comma-separated.") var hidden = "256"
    @Option(help: "Mini-batch size.") var batchSize = 64
    @Option(help: "Repetitions (the best is reported).") var repeats = 3
    @Option(help: "OpenBLAS threads.") var threads = 2
    @Option(help: "Optimizer: sgd or adam.") var optimizer = "sgd"
    @Option(help: "SGD momentum.") var momentum = 0.9
    @Option(help: "Directory holding Fashion-MNIST's IDX files.") var dataDir = "/usr/share/datasets/fashion-mnist"
    @Flag(help: "Print JSON.") var json = false

    var widths: [Int]? {
        let parts = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return !parts.isEmpty && parts.allSatisfy({ ($0 ?? 0) > 0 }) ? parts.map { $0! } : nil
    }

    func validate() throws {
        guard widths != nil else { throw ValidationError("--hidden must be positive integers, e.g. 256 or 256,128") }
        guard batchSize >= 1, repeats >= 1, threads >= 1 else {
            throw ValidationError("--batch-size, --repeats and --threads must be at least 1")
        }
    }

    func run() throws {
        BLAS.setThreads(threads)
        let data = try IDX.dataset(imagesPath: dataDir + "/train-images-idx3-ubyte.gz",
                                   labelsPath: dataDir + "/train-labels-idx1-ubyte.gz")
        let spec = try ModelSpec(architecture: .mlp, inputFeatures: 784, hidden: widths!, classCount: 10)
        guard let kind = OptimizerKind(rawValue: optimizer) else { throw ValidationError("--optimizer must be sgd or adam") }
        let config = TrainingConfig(localEpochs: 1, batchSize: batchSize, learningRate: 0.01, optimizer: kind, momentum: momentum)
        let initial = spec.initialParameters(seed: 1)
        var epoch = Double.infinity, floor = Double.infinity
        for _ in 0..<repeats {
            epoch = min(epoch, try time { _ = try Trainer.train(spec: spec, parameters: initial, data: data, config: config) })
            floor = min(floor, time { Self.gemmOnly(spec: spec, examples: data.count, batch: batchSize) })
        }
        let flops = Self.flops(spec: spec, examples: data.count)
        let result: [String: Any] = [
            "model": spec.summary, "examples": data.count, "batch_size": batchSize, "threads": threads,
            "epoch_seconds": epoch, "sgemm_seconds": floor, "ratio": epoch / floor, "gflops_sgemm": flops / floor / 1e9,
        ]
        if json { printJSON(result); return }
        print(String(format: "%@: one epoch over %d examples, batch %d, %d threads", spec.summary, data.count, batchSize, threads))
        print(String(format: "  trainer      %.3f s", epoch))
        print(String(format: "  sgemm alone  %.3f s  (%.1f GFLOP/s)", floor, flops / floor / 1e9))
        print(String(format: "  ratio        %.2f×", epoch / floor))
    }

    func time(_ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        let d = try clock.measure(body)
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Exactly the sgemm calls one epoch makes: forward, weight gradient, and input gradient below the top.
    static func gemmOnly(spec: ModelSpec, examples: Int, batch: Int) {
        let widths = spec.widths
        var acts = widths.map { [Float](repeating: 0.01, count: batch * $0) }
        var weights = spec.layers.map { [Float](repeating: 0.01, count: $0.inputs * $0.outputs) }
        var grads = weights
        var start = 0
        while start < examples {
            let n = min(batch, examples - start)
            for (l, layer) in spec.layers.enumerated() {
                let a = acts[l]
                weights[l].withUnsafeBufferPointer { w in
                    acts[l + 1].withUnsafeMutableBufferPointer { z in
                        BLAS.gemm(transB: true, m: n, n: layer.outputs, k: layer.inputs, a: a, lda: layer.inputs,
                                  b: w.baseAddress!, ldb: layer.inputs, beta: 1, c: z.baseAddress!, ldc: layer.outputs)
                    }
                }
            }
            for (l, layer) in spec.layers.enumerated().reversed() {
                let d = acts[l + 1], a = acts[l]
                grads[l].withUnsafeMutableBufferPointer { g in
                    BLAS.gemm(transA: true, m: layer.outputs, n: layer.inputs, k: n, a: d, lda: layer.outputs,
                              b: a, ldb: layer.inputs, c: g.baseAddress!, ldc: layer.inputs)
                }
                if l > 0 {
                    weights[l].withUnsafeBufferPointer { w in
                        acts[l].withUnsafeMutableBufferPointer { p in
                            BLAS.gemm(m: n, n: layer.inputs, k: layer.outputs, a: d, lda: layer.outputs,
                                      b: w.baseAddress!, ldb: layer.inputs, c: p.baseAddress!, ldc: layer.inputs)
                        }
                    }
                }
            }
            start += n
        }
        weights[0][0] += grads[0][0]  // keep the work observable
    }

    static func flops(spec: ModelSpec, examples: Int) -> Double {
        spec.layers.enumerated().reduce(0.0) { total, item in
            let (l, layer) = item
            let per = 2.0 * Double(examples) * Double(layer.inputs * layer.outputs)
            return total + per * (l > 0 ? 3 : 2)
        }
    }
}
