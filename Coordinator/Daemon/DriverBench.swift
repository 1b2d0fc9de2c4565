import ArgumentParser
import ConclaveConfig
import ConclaveCrypto
import ConclaveFederation
import ConclaveCoordinator
import ConclaveSupport
import ConclaveStorage
import Foundation
import Logging

/// `conclave-coordinator bench-driver` (run by `conclave bench driver`): one secure round through the real `RunDriver` (in process, real SQLite and
/// checkpoint files, no network) with large updates, timing how long the coordinator takes to take each masked
/// input and how much memory it holds at its peak. The coordinator must add each input into its running sum in
/// place: a second reference to the round state while it mutates would copy the whole sum per input.
struct DriverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-driver", abstract: "Time the coordinator's run driver taking masked inputs in a secure round.",
        shouldDisplay: false)
    @Option(help: "Number of silos.") var silos = 10
    @Option(help: "Parameters per update (a logistic regression with this many inputs × 10 classes, rounded).") var params = 10_000_000
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Measure without the durable attempt log (to separate its cost; the coordinator always keeps it).")
    var noDurableAttempts = false

    func validate() throws {
        guard silos >= 3 else { throw ValidationError("--silos must be at least 3") }
        guard params >= 100 else { throw ValidationError("--params must be at least 100") }
    }

    /// Resident memory of this process in MiB: now (VmRSS) or at its peak since the last reset (VmHWM).
    static func memoryMiB(_ field: String) -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    /// Resets the peak (Linux: writing 5 to clear_refs), so the peak measured covers the masked inputs alone.
    static func resetPeak() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    func run() async throws {
        let inputs = max(1, params / 10 - 1)
        let dir = NSTemporaryDirectory() + "conclave-driver-bench-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try CoordinatorConfig.parse("""
            [server]
            listen = "127.0.0.1:0"
            insecure = true
            [storage]
            database = "c.sqlite"
            checkpoints = "ckpt"
            """, source: dir + "/coordinator.toml")
        let driver = try RunDriver(config: config, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() },
                                   durableAttempts: !noDurableAttempts)
        let run = try await driver.startRun(specTOML: """
            rounds = 1
            min_silos = 2
            silos_per_round = \(silos)
            round_deadline_seconds = 3600
            [model]
            architecture = "logreg"
            input_features = \(inputs)
            num_classes = 10
            [training]
            learning_rate = 0.1
            [secure_aggregation]
            phase_timeout_seconds = 3600
            """, source: "bench.toml")
        let ids = (0..<silos).map { "silo-\($0)" }
        let keys = ids.map { _ in Ed25519KeyPair() }
        let infos = zip(ids, keys).map { SiloInfo(id: $0, examples: 100, features: inputs, classes: 10, identityKey: $1.publicKey) }
        var tasks = [SecureTask]()
        for _ in 0..<2 {
            tasks = []
            for info in infos { if case .train(let task) = try await driver.requestWork(from: info), let s = task.secure { tasks.append(s) } }
        }
        guard tasks.count == silos else { throw ValidationError("the round did not open for every silo") }
        let count = tasks[0].parameterCount
        var sessions = [SecureSiloSession]()
        var rng = SystemRandomNumberGenerator()
        for (i, task) in tasks.enumerated() {
            let update = (0..<count).map { _ in Float.random(in: -0.01...0.01, using: &rng) }
            sessions.append(try SecureSiloSession(siloID: ids[i], identity: keys[i], task: task, update: update, threads: 2))
        }
        // Keys, then shares: each phase closes when every silo answered.
        var replies = [SecureRound.Reply?](repeating: nil, count: silos)
        func collect() async throws {
            for i in 0..<silos {
                guard case .reply(let r) = await driver.secureAnswer(for: ids[i]) else { throw ValidationError("silo \(i) was left out") }
                replies[i] = r
            }
        }
        for i in 0..<silos {
            try await driver.secureSubmit(sessions[i].start(.init(silo: ids[i], examples: 100, trainLoss: 0, trainSeconds: 0)),
                                          from: ids[i], runID: run.id, round: 1)
        }
        try await collect()
        for i in 0..<silos { try await driver.secureSubmit(try sessions[i].respond(to: replies[i]!), from: ids[i], runID: run.id, round: 1) }
        try await collect()
        Self.resetPeak()
        let baseline = Self.memoryMiB("VmRSS")
        var seconds = [Double]()
        for i in 0..<silos {
            let masked = try sessions[i].respond(to: replies[i]!)  // the silo's work, not timed
            let start = ContinuousClock.now
            try await driver.secureSubmit(masked, from: ids[i], runID: run.id, round: 1)
            let d = ContinuousClock.now - start
            seconds.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
        let peak = Self.memoryMiB("VmHWM")
        try await collect()
        for i in 0..<silos { try await driver.secureSubmit(try sessions[i].respond(to: replies[i]!), from: ids[i], runID: run.id, round: 1) }
        try await collect()
        for i in 0..<silos { try await driver.secureSubmit(try sessions[i].respond(to: replies[i]!), from: ids[i], runID: run.id, round: 1) }
        let committed = try driver.store.rounds(run: run.id).count == 1
        let mean = seconds.reduce(0, +) / Double(silos)
        let sumMiB = Double(count * 4) / 1_048_576
        if json {
            let object: [String: Any] = ["silos": silos, "params": count, "seconds_per_masked_input": mean,
                                         "rss_mib_before_masked_inputs": baseline, "peak_rss_mib_during_masked_inputs": peak,
                                         "sum_mib": sumMiB, "committed": committed, "durable_attempts": !noDurableAttempts]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("\(silos) silos × \(count) parameters (sum \(String(format: "%.1f", sumMiB)) MiB): "
                  + "\(String(format: "%.4f", mean)) s per masked input; RSS \(String(format: "%.0f", baseline)) MiB before the "
                  + "masked inputs, peak \(String(format: "%.0f", peak)) MiB while they arrived; round committed: \(committed)")
        }
    }
}
