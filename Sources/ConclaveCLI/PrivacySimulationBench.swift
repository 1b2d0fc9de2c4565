import ArgumentParser
import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveTensor
import Foundation

/// Central against distributed DP at the same ε, in one process (the round state machine and the whole
/// secure-aggregation protocol, no sockets): Fashion-MNIST's training images split over hundreds of silos.
struct PrivacySimulationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dp-federation", abstract: "Simulate central vs. distributed DP with many silos in one process.")
    @Option(help: "Silos (the 60,000 training images are split among them).") var silos = 500
    @Option(help: "Rounds.") var rounds = 20
    @Option(help: "Privacy budget ε at δ.") var epsilon = 3.0
    @Option(help: "δ.") var delta = 1e-5
    @Option(help: "Central mode's accountant: rdp (the bound distributed mode uses, so both carry the same noise) or pld.")
    var accountant = "rdp"
    @Option(help: "Modes to run, comma-separated: central, distributed, none.") var modes = "central,distributed"
    @Option(help: "Clip norm C of each silo's update.") var clipNorm = 1.0
    @Option(help: "Server learning rate (FedAvg).") var serverLearningRate = 1.0
    @Option(help: "Local learning rate.") var learningRate = 0.1
    @Option(help: "Dirichlet α of the label split (0 for IID).") var alpha = 0.0
    @Option(help: "Seed for the split and the initial model.") var seed = 7
    @Option(help: "Directory holding Fashion-MNIST's IDX files.") var dataDir = "/usr/share/datasets/fashion-mnist"
    @Flag(help: "Print JSON lines.") var json = false

    func validate() throws {
        guard AccountantKind(rawValue: accountant) != nil else { throw ValidationError("--accountant must be pld or rdp") }
        guard silos >= 2, rounds >= 1, epsilon > 0, delta > 0, delta < 1, clipNorm > 0 else {
            throw ValidationError("--silos ≥ 2, --rounds ≥ 1, --epsilon > 0, --delta in (0, 1) and --clip-norm > 0")
        }
    }

    func run() throws {
        BLAS.setThreads(1)
        let train = try IDX.dataset(imagesPath: dataDir + "/train-images-idx3-ubyte.gz",
                                    labelsPath: dataDir + "/train-labels-idx1-ubyte.gz")
        let test = try IDX.dataset(imagesPath: dataDir + "/t10k-images-idx3-ubyte.gz",
                                   labelsPath: dataDir + "/t10k-labels-idx1-ubyte.gz")
        let scheme: Partitioner.Scheme = alpha > 0 ? .dirichlet(alpha: alpha) : .iid
        let parts = try Partitioner.partition(labels: train.labels, classCount: 10, silos: silos, scheme: scheme,
                                              seed: UInt64(seed), minimumPerSilo: 10)
        let population = parts.enumerated().map { Simulation.Silo(id: "silo-\($0.offset)", data: train.subset($0.element)) }
        let model = try ModelSpec(architecture: .logreg, inputFeatures: 784, hidden: [], classCount: 10)
        for name in modes.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let privacy: PrivacyConfig? = switch name {
            case "none": nil
            case "central": try PrivacyConfig(mode: .central, epsilon: epsilon, delta: delta, accountant: AccountantKind(rawValue: accountant) ?? .rdp)
            case "distributed": try PrivacyConfig(mode: .distributed, epsilon: epsilon, delta: delta)
            default: throw ValidationError("--modes takes central, distributed and none, got '\(name)'")
            }
            let spec = try RunSpec(name: "dp-\(name)", model: model, rounds: rounds,
                                   training: TrainingConfig(localEpochs: 1, batchSize: 16, learningRate: learningRate, momentum: 0),
                                   minSilos: max(2, silos / 2), roundDeadlineSeconds: 60,
                                   server: ServerOptimizerConfig(kind: .fedavg, learningRate: serverLearningRate),
                                   seed: UInt64(seed),
                                   secureAggregation: SecureAggregationConfig(clipNorm: clipNorm, dropoutRate: 0.1),
                                   privacy: privacy)
            var sim = Simulation(spec: spec, silos: population)
            let clock = ContinuousClock()
            let start = clock.now
            let reports = try sim.run(evaluateOn: test) { report in
                if !json {
                    print(String(format: "%@ round %2d: accuracy %.4f  ε %.3f", name, report.round,
                                 report.evaluation?.accuracy ?? .nan, report.privacy?.epsilon ?? .nan))
                }
            }
            let elapsed = clock.now - start
            let last = reports.last
            let result: [String: Any] = [
                "mode": name, "silos": silos, "rounds": reports.count, "epsilon": last?.privacy?.epsilon ?? NSNull(),
                "delta": delta, "noise_multiplier": spec.privacy?.noiseMultiplier ?? NSNull(),
                "test_accuracy": last?.evaluation?.accuracy ?? NSNull(), "clip_norm": clipNorm,
                "seconds": Double(elapsed.components.seconds),
            ]
            if json { printJSON(result) } else {
                print(String(format: "%@: %d silos, %d rounds, accuracy %.4f at ε %.3f (σ %.3f), %d s", name, silos,
                             reports.count, last?.evaluation?.accuracy ?? .nan, last?.privacy?.epsilon ?? .nan,
                             spec.privacy?.noiseMultiplier ?? 0, Int(elapsed.components.seconds)))
            }
        }
    }
}
