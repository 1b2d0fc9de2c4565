import ArgumentParser
import ConclavePrivacy
import Foundation

/// `conclave privacy`: plan a run's privacy budget — ε for a noise level, or the noise for an ε — for T steps
/// of the Poisson-subsampled Gaussian mechanism (DP-SGD in a silo, DP-FedAvg across silos).
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy", abstract: "Plan privacy budgets: ε for a noise multiplier, or the noise for an ε.",
        subcommands: [EpsilonCommand.self, CalibrateCommand.self])
}

struct MechanismOptions: ParsableArguments {
    @Option(help: "Probability that a record (or silo) takes part in a step, in (0, 1].") var samplingRate: Double
    @Option(help: "Number of steps (rounds, or DP-SGD iterations).") var steps: Int
    @Option(help: "Target δ, in (0, 1).") var delta: Double
    @Option(name: .customLong("accountant"), help: "pld (tighter, default) or rdp.") var accountantName = "pld"

    var accountant: AccountantKind { AccountantKind(rawValue: accountantName) ?? .pld }

    func validate() throws {
        guard AccountantKind(rawValue: accountantName) != nil else {
            throw ValidationError("--accountant must be pld or rdp, got '\(accountantName)'")
        }
    }
    @Flag(help: "Print one JSON object.") var json = false

    func report(epsilon: Double, noiseMultiplier: Double) {
        if json {
            printJSON(["epsilon": jsonNumber(epsilon), "delta": delta, "noise_multiplier": noiseMultiplier,
                       "sampling_rate": samplingRate, "steps": steps, "accountant": accountant.rawValue])
        } else {
            print(String(format: "ε = %.6g at δ = %g (noise multiplier %.6g, sampling rate %g, %d steps, ", epsilon, delta,
                         noiseMultiplier, samplingRate, steps) + "\(accountant.rawValue) accountant)")
        }
    }
}

struct EpsilonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "epsilon", abstract: "ε spent for δ by T noisy steps.")
    @Option(help: "Noise standard deviation divided by the clipping bound (sensitivity).") var noiseMultiplier: Double
    @OptionGroup var mechanism: MechanismOptions

    func validate() throws {
        do {
            try Accountant.validate(noiseMultiplier: noiseMultiplier, samplingRate: mechanism.samplingRate,
                                    steps: mechanism.steps, delta: mechanism.delta)
        } catch { throw ValidationError(error.message) }
    }

    func run() throws {
        let eps = try Accountant.epsilon(noiseMultiplier: noiseMultiplier, samplingRate: mechanism.samplingRate,
                                         steps: mechanism.steps, delta: mechanism.delta, accountant: mechanism.accountant)
        mechanism.report(epsilon: eps, noiseMultiplier: noiseMultiplier)
    }
}

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "calibrate",
                                                    abstract: "The smallest noise multiplier that keeps T steps within ε.")
    @Option(help: "Target ε.") var epsilon: Double
    @OptionGroup var mechanism: MechanismOptions

    func validate() throws {
        do {
            try Accountant.validate(epsilon: epsilon, samplingRate: mechanism.samplingRate, steps: mechanism.steps,
                                    delta: mechanism.delta)
        } catch { throw ValidationError(error.message) }
    }

    func run() throws {
        let plan: (noiseMultiplier: Double, epsilon: Double)
        do {
            plan = try Accountant.calibrated(epsilon: epsilon, samplingRate: mechanism.samplingRate, steps: mechanism.steps,
                                             delta: mechanism.delta, accountant: mechanism.accountant)
        } catch { throw ValidationError(error.message) }
        mechanism.report(epsilon: plan.epsilon, noiseMultiplier: plan.noiseMultiplier)
    }
}
