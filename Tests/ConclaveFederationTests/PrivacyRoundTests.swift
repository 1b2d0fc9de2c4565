import Foundation
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclaveSecAgg
import ConclavePrivacy
import ConclaveTesting
import Testing

/// Central DP-FedAvg on top of secure aggregation: noise N(0, (σC)²) on the unmasked sum, ε charged per round.
@Suite struct CentralPrivacyTests {
    @Test func centralModeAddsCalibratedNoiseAndChargesEachRound() throws {
        let model = try ModelSpec(architecture: .logreg, inputFeatures: 64, hidden: [], classCount: 10)  // 650
        let privacy = try PrivacyConfig(mode: .central, noiseMultiplier: 0.8, delta: 1e-5)
        let spec = try RunSpec(name: "dp", model: model, rounds: 2, training: TrainingConfig(), minSilos: 2, silosPerRound: 3,
                               roundDeadlineSeconds: 10, secureAggregation: SecureAggregationConfig(clipNorm: 2),
                               privacy: privacy)
        var m = RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 650))
        let parties = (0..<3).map { i -> (SiloInfo, Ed25519KeyPair) in
            let key = Ed25519KeyPair()
            return (SiloInfo(id: "s\(i)", examples: 100, features: 64, classes: 10, identityKey: key.publicKey), key)
        }
        var tasks = [String: SecureTask]()
        for _ in 0..<2 {
            for (info, _) in parties {
                if case .train(_, _, _, let t?) = try m.requestWork(from: info, now: 0) { tasks[info.id] = t }
            }
        }
        #expect(tasks.count == 3)
        var sessions = [String: SecureSiloSession]()
        var outbox = [(String, SecureRound.Message)]()
        for (info, key) in parties {
            var session = try SecureSiloSession(siloID: info.id, identity: key, task: tasks[info.id]!,
                                                update: [Float](repeating: 0, count: 650))
            outbox.append((info.id, session.start(.init(silo: info.id, examples: 100, trainLoss: 0, trainSeconds: 0))))
            sessions[info.id] = session
        }
        var closed: RoundStateMachine.ClosedRound?
        while !outbox.isEmpty {
            let (from, message) = outbox.removeFirst()
            switch try m.secure(message, from: from, runID: "run-1", round: 1, now: 1) {
            case .secureAdvanced(_, let replies):
                for (to, reply) in replies.sorted(by: { $0.key < $1.key }) { outbox.append((to, try sessions[to]!.respond(to: reply))) }
            case .roundClosed(let c): closed = c
            default: break
            }
        }
        let round = try #require(closed)
        // Zero updates: the new weights are pure noise — σC on the sum, divided by the 3 survivors, each of
        // which counts once in central mode (uniform weights, whatever their example counts).
        #expect(tasks.values.allSatisfy { $0.weight == 1 })
        let values = round.newWeights.map(Double.init)
        let std = (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
        #expect(abs(std - 1.6 / 3) < 0.14 * 1.6 / 3, "noise std \(std), expected σC/3 = 0.533")
        // The rounding to the noise lattice costs a hair of σ; ε is charged for what was achieved.
        let sigma = try #require(round.privacy?.noiseMultiplier)
        #expect(sigma < 0.8 && sigma > 0.8 * 0.9999)
        #expect(round.privacy?.epsilon == (try Accountant.epsilon(noiseMultiplier: sigma, samplingRate: 1, steps: 1, delta: 1e-5)))
        #expect(round.privacy?.delta == 1e-5)
    }
}

/// Distributed DP: every silo adds a share of the noise before masking; the coordinator never holds an
/// un-noised sum, and each round is charged for the shares its sum actually held.
@Suite struct DistributedPrivacyTests {
    /// Runs one secure round of zero updates among `silos`, with `leaving` silos vanishing after the key exchange.
    func round(silos: Int, leaving: Int) throws -> (RoundStateMachine.ClosedRound, [String: SecureTask], RoundStateMachine) {
        let model = try ModelSpec(architecture: .logreg, inputFeatures: 64, hidden: [], classCount: 10)  // 650 → 1024
        let privacy = try PrivacyConfig(mode: .distributed, noiseMultiplier: 0.8, delta: 1e-5)
        let spec = try RunSpec(name: "ddp", model: model, rounds: 2, training: TrainingConfig(), minSilos: 2,
                               silosPerRound: silos, roundDeadlineSeconds: 10,
                               secureAggregation: SecureAggregationConfig(clipNorm: 2, dropoutRate: 0.25), privacy: privacy)
        var m = RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 650))
        let parties = (0..<silos).map { i -> (SiloInfo, Ed25519KeyPair) in
            let key = Ed25519KeyPair()
            return (SiloInfo(id: "s\(i)", examples: UInt64(100 + i), features: 64, classes: 10, identityKey: key.publicKey), key)
        }
        var tasks = [String: SecureTask]()
        for _ in 0..<2 {
            for (info, _) in parties {
                if case .train(_, _, _, let t?) = try m.requestWork(from: info, now: 0) { tasks[info.id] = t }
            }
        }
        var sessions = [String: SecureSiloSession]()
        var outbox = [(String, SecureRound.Message)]()
        for (info, key) in parties {
            var session = try SecureSiloSession(siloID: info.id, identity: key, task: tasks[info.id]!,
                                                update: [Float](repeating: 0, count: 650))
            outbox.append((info.id, session.start(.init(silo: info.id, examples: info.examples, trainLoss: 0, trainSeconds: 0))))
            sessions[info.id] = session
        }
        let gone = Set(parties.suffix(leaving).map(\.0.id))
        var closed: RoundStateMachine.ClosedRound?
        var now = 1.0
        while closed == nil {
            while !outbox.isEmpty {
                let (from, message) = outbox.removeFirst()
                switch try m.secure(message, from: from, runID: "run-1", round: 1, now: now) {
                case .secureAdvanced(_, let replies):
                    for (to, reply) in replies.sorted(by: { $0.key < $1.key }) where !gone.contains(to) {
                        outbox.append((to, try sessions[to]!.respond(to: reply)))
                    }
                case .roundClosed(let c): closed = c
                default: break
                }
            }
            if closed == nil {
                now += 100  // the silos that left never answer: let the phase deadline pass
                switch m.tick(now: now) {
                case .roundClosed(let c): closed = c
                case .secureAdvanced(_, let replies):
                    for (to, reply) in replies.sorted(by: { $0.key < $1.key }) where !gone.contains(to) {
                        outbox.append((to, try sessions[to]!.respond(to: reply)))
                    }
                case .roundAbandoned(_, let reason): throw FederationError(.failedPrecondition, "round abandoned: \(reason)")
                case .none: break
                }
            }
        }
        m.roundCommitted()
        return (closed!, tasks, m)
    }

    @Test func theSumCarriesEverySurvivorsShareAndIsChargedForThem() throws {
        let (full, tasks, machine) = try round(silos: 8, leaving: 0)
        // Noise sized for 6 of 8 survivors (dropout 0.25): each share is σC/√6 = 1.6/√6.
        let task = try #require(tasks["s0"])
        let mechanism = try #require(task.distributed)
        #expect(abs(mechanism.localStddev - 1.6 / 6.0.squareRoot()) < 1e-12)
        #expect(tasks.values.allSatisfy { $0.weight == 1 && $0.distributed?.rotationSeed == mechanism.rotationSeed })
        #expect(full.secure?.unmasked == 8)
        // Zero updates: the mean is the noise of 8 shares over 8 silos: std 1.6·√(8/6)/8.
        let values = full.newWeights.map(Double.init)
        let std = (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
        let expected = 1.6 * (8.0 / 6).squareRoot() / 8
        #expect(abs(std - expected) < 0.14 * expected, "noise std \(std), expected \(expected)")
        let spent = try #require(full.privacy)
        #expect(spent.epsilon == machine.spec.privacy!.distributedEpsilon(history: [(8, 8)], clipNorm: 2, dimension: 650,
                                                                          dropoutRate: 0.25))
        #expect(machine.noiseShares.count == 1 && machine.noiseShares[0] == (8, 8))

        // Three of eight leave after the keys: five shares remain, fewer than the six the noise was sized for,
        // and the round costs more.
        let (short, _, _) = try round(silos: 8, leaving: 3)
        #expect(short.secure?.unmasked == 5)
        #expect(try #require(short.privacy?.epsilon) > spent.epsilon)
    }
}

/// Adaptive clipping (Andrew et al. 2021): the clip norm follows the noisy fraction of silos within it, and
/// the count's noise is paid out of the run's multiplier.
@Suite struct AdaptiveClippingTests {
    /// One secure round in which silo i sends `update(i)`.
    func secureRound(_ m: inout RoundStateMachine, parties: [(SiloInfo, Ed25519KeyPair)], round: Int,
                     update: (Int) -> [Float]) throws -> (RoundStateMachine.ClosedRound, [String: SecureTask]) {
        var tasks = [String: SecureTask]()
        for _ in 0..<2 {
            for (info, _) in parties {
                if case .train(_, _, _, let t?) = try m.requestWork(from: info, now: Double(round)) { tasks[info.id] = t }
            }
        }
        var sessions = [String: SecureSiloSession]()
        var outbox = [(String, SecureRound.Message)]()
        for (i, (info, key)) in parties.enumerated() {
            var session = try SecureSiloSession(siloID: info.id, identity: key, task: tasks[info.id]!, update: update(i))
            outbox.append((info.id, session.start(.init(silo: info.id, examples: info.examples, trainLoss: 0, trainSeconds: 0))))
            sessions[info.id] = session
        }
        var closed: RoundStateMachine.ClosedRound?
        while !outbox.isEmpty {
            let (from, message) = outbox.removeFirst()
            switch try m.secure(message, from: from, runID: "run-1", round: round, now: Double(round)) {
            case .secureAdvanced(_, let replies):
                for (to, reply) in replies.sorted(by: { $0.key < $1.key }) { outbox.append((to, try sessions[to]!.respond(to: reply))) }
            case .roundClosed(let c): closed = c
            case .roundAbandoned(_, let reason): throw FederationError(.failedPrecondition, reason)
            default: break
            }
        }
        m.roundCommitted()
        return (try #require(closed), tasks)
    }

    @Test func theClipNormFollowsTheSilosAndTheCountCostsNoExtraPrivacy() throws {
        let model = try ModelSpec(architecture: .logreg, inputFeatures: 64, hidden: [], classCount: 10)  // 650
        // z = 0.3, σ_b = 0.6: the update keeps z_Δ = (0.3⁻² − 0.6⁻²)^−½ ≈ 0.346; six bits, so the noisy
        // fraction is off by 0.1 (one s.d.) — the 0.5 margins below are 5 s.d.
        let adaptive = try AdaptiveClipping(targetQuantile: 0.5, learningRate: 0.2, countNoiseStddev: 0.6)
        let privacy = try PrivacyConfig(mode: .central, noiseMultiplier: 0.3, adaptiveClipping: adaptive)
        let spec = try RunSpec(name: "adaptive", model: model, rounds: 3, training: TrainingConfig(), minSilos: 2,
                               silosPerRound: 6, roundDeadlineSeconds: 10,
                               secureAggregation: SecureAggregationConfig(clipNorm: 2), privacy: privacy)
        var m = RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 650))
        let parties = (0..<6).map { i -> (SiloInfo, Ed25519KeyPair) in
            let key = Ed25519KeyPair()
            return (SiloInfo(id: "s\(i)", examples: 100, features: 64, classes: 10, identityKey: key.publicKey), key)
        }
        func update(norm: Float) -> [Float] { [norm] + [Float](repeating: 0, count: 649) }

        // Round 1: every update (norm 0.5) is within C = 2, so C shrinks: C·exp(−0.2·(≈1 − 0.5)).
        let (first, tasks) = try secureRound(&m, parties: parties, round: 1) { _ in update(norm: 0.5) }
        #expect(tasks.values.allSatisfy { $0.clipBit && $0.clipNorm == 2 })
        #expect(first.clipNorm == 2)
        let shrunk = try #require(first.nextClipNorm)
        #expect(shrunk < 2 * exp(-0.2 * 0) && shrunk > 2 * exp(-0.2 * 1.0), "next clip \(shrunk)")
        #expect(m.clipNorm == shrunk)
        // The two releases together cost one Gaussian at z (less the lattice's hair).
        let z = try #require(first.privacy?.noiseMultiplier)
        #expect(z < 0.3 && z > 0.3 * 0.999, "combined multiplier \(z)")

        // Round 2: every update (norm 50) is beyond the new C, so C grows back; the silos clip to the new C.
        let (second, tasks2) = try secureRound(&m, parties: parties, round: 2) { _ in update(norm: 50) }
        #expect(tasks2.values.allSatisfy { $0.clipNorm == shrunk })
        let grown = try #require(second.nextClipNorm)
        #expect(grown > shrunk && grown < shrunk * exp(0.2 * 1.0))
        // Clipped to C: the mean moved by about C per round (noise z_Δ·C/6 ≈ 0.06·C per coordinate).
        let moved = Double(second.newWeights[0] - first.newWeights[0])
        #expect(abs(moved - shrunk) < 0.5 * shrunk, "first coordinate moved \(moved), clip \(shrunk)")
    }

    @Test func aCountNoiseThatLeavesNothingForTheUpdateIsRefused() throws {
        let model = try ModelSpec(architecture: .logreg, inputFeatures: 64, hidden: [], classCount: 10)
        let adaptive = try AdaptiveClipping(countNoiseStddev: 0.5)
        #expect(throws: FederationError.self) {
            try RunSpec(name: "x", model: model, rounds: 3, training: TrainingConfig(), minSilos: 2,
                        secureAggregation: SecureAggregationConfig(),
                        privacy: PrivacyConfig(mode: .central, noiseMultiplier: 0.8, adaptiveClipping: adaptive))
        }
        #expect(throws: FederationError.self) {
            try PrivacyConfig(mode: .record, noiseMultiplier: 1, adaptiveClipping: AdaptiveClipping())
        }
    }
}
