import Foundation
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclaveSecAgg
import ConclavePrivacy
import ConclaveTesting
import Testing

/// The secure round inside the round state machine: silos' sessions and the coordinator's `SecureRound`
/// exchange messages in process, with silos leaving at every phase.
@Suite struct SecureRoundTests {
    static let model = try! ModelSpec(architecture: .logreg, inputFeatures: 2, hidden: [], classCount: 2)  // 6 parameters

    struct Party {
        let info: SiloInfo
        let identity = Ed25519KeyPair()
        init(_ id: String, examples: UInt64) {
            info = SiloInfo(id: id, examples: examples, features: 2, classes: 2, identityKey: identity.publicKey)
        }
    }

    enum Leave: CaseIterable { case beforeKeys, afterKeys, afterShares, afterMaskedInput, duringUnmasking }

    /// Rounds select all `silos` (once that many have polled), and need at least two.
    func machine(silos: Int, precisionBits: Int = 20) throws -> RoundStateMachine {
        let spec = try RunSpec(name: "t", model: Self.model, rounds: 3, training: TrainingConfig(), minSilos: 2,
                               silosPerRound: silos, roundDeadlineSeconds: 10,
                               secureAggregation: SecureAggregationConfig(precisionBits: precisionBits))
        return RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 6))
    }

    func open(_ m: inout RoundStateMachine, _ parties: [Party]) throws -> [String: SecureTask] {
        var tasks = [String: SecureTask]()
        for _ in 0..<2 {
            for p in parties {
                if case .train(_, _, _, let secure?) = try m.requestWork(from: p.info, now: 0) { tasks[p.info.id] = secure }
            }
        }
        return tasks
    }

    /// Runs one secure round; `leaving` maps silos to the point where their connection ends.
    func run(_ m: inout RoundStateMachine, _ parties: [Party], updates: [String: [Float]],
             leaving: [String: Leave] = [:]) throws -> (event: RoundStateMachine.Event, sessions: [String: SecureSiloSession]) {
        let tasks = try open(&m, parties)
        #expect(tasks.count == parties.count)
        var sessions = [String: SecureSiloSession]()
        var outbox = [(String, SecureRound.Message)]()
        var last = RoundStateMachine.Event.none
        func deliver(_ event: RoundStateMachine.Event) throws {
            last = event
            guard case .secureAdvanced(_, let replies) = event else { return }
            for (to, reply) in replies.sorted(by: { $0.key < $1.key }) {
                let step: Leave? = switch reply {
                case .keys: .afterKeys
                case .shares: .afterShares
                case .survivors: .afterMaskedInput
                case .signatures: .duringUnmasking
                }
                if leaving[to] == step {
                    try deliver(m.secureLeft(to, runID: "run-1", round: 1, now: 2))
                    continue
                }
                outbox.append((to, try sessions[to]!.respond(to: reply)))
            }
        }
        for p in parties {
            let id = p.info.id
            if leaving[id] == .beforeKeys { continue }  // crashed while training: never joins
            var session = try SecureSiloSession(siloID: id, identity: p.identity, task: tasks[id]!, update: updates[id]!)
            outbox.append((id, session.start(.init(silo: id, examples: p.info.examples, trainLoss: 1, trainSeconds: 0))))
            sessions[id] = session
        }
        var clock = 1.0
        while true {
            while !outbox.isEmpty {
                let (from, message) = outbox.removeFirst()
                try deliver(m.secure(message, from: from, runID: "run-1", round: 1, now: clock))
            }
            switch last {
            case .roundClosed, .roundAbandoned: return (last, sessions)
            default: guard clock < 500 else { return (last, sessions) }
            }
            clock += 40  // past the round deadline (10 s), then past each phase timeout (30 s)
            try deliver(m.tick(now: clock))
        }
    }

    func parties(_ n: Int) -> [Party] { (0..<n).map { Party("s\($0)", examples: UInt64(10 * ($0 + 1))) } }

    func updates(_ parties: [Party]) -> [String: [Float]] {
        var rng = SeededGenerator(seed: 3)
        return Dictionary(uniqueKeysWithValues: parties.map { p in
            (p.info.id, (0..<6).map { _ in Float(rng.nextGaussian()) })
        })
    }

    @Test func secureRoundGivesTheWeightedMeanOfTheUpdates() throws {
        var m = try machine(silos: 4)
        let ps = parties(4)
        let ups = updates(ps)
        let (event, _) = try run(&m, ps, updates: ups)
        guard case .roundClosed(let closed) = event else {
            Issue.record("round should close, got \(event)")
            return
        }
        let total = Float(ps.reduce(0) { $0 + $1.info.examples })
        for i in 0..<6 {
            let expected = ps.reduce(Float(0)) { $0 + ups[$1.info.id]![i] * Float($1.info.examples) } / total
            #expect(abs(closed.newWeights[i] - expected) < 1e-5, "coordinate \(i)")
        }
        #expect(closed.secure == RoundStateMachine.SecureSummary(unmasked: 4, dropped: 0, threshold: 3))
        #expect(closed.contributions.map(\.silo).sorted() == ["s0", "s1", "s2", "s3"])
    }

    /// Two of five silos (n − t with t = 3) leave at each phase; the decoded mean equals the decoded sum of
    /// exactly the survivors' quantized inputs.
    @Test(arguments: Leave.allCases) func roundSurvivesSilosLeavingAt(_ point: Leave) throws {
        var m = try machine(silos: 5)
        let ps = parties(5)
        let ups = updates(ps)
        let (event, sessions) = try run(&m, ps, updates: ups, leaving: ["s1": point, "s3": point])
        guard case .roundClosed(let closed) = event else {
            Issue.record("round should close with 3 of 5 silos, got \(event)")
            return
        }
        // A silo that leaves once its masked input is in is still a survivor: its input is in the sum.
        let survivors = [.afterMaskedInput, .duringUnmasking].contains(point) ? ["s0", "s1", "s2", "s3", "s4"] : ["s0", "s2", "s4"]
        #expect(closed.contributions.map(\.silo).sorted() == survivors)
        #expect(closed.secure?.unmasked == survivors.count)
        #expect(closed.secure?.dropped == 5 - survivors.count)
        var sum = [UInt32](repeating: 0, count: 6)
        for s in survivors { sum.addModular(sessions[s]!.input) }
        let task = sessions["s0"]!.task
        let weight = survivors.reduce(0.0) { $0 + sessions[$1]!.task.weight }
        let expected = try task.encoding().decode(sum: sum).map { $0 * Float(1 / weight) }
        #expect(closed.newWeights == expected, "FedAvg with lr 1 from zero weights is exactly the decoded mean")
    }

    /// 40 bits per value do not fit one 32-bit word for 5 silos: inputs take two words, sums stay exact.
    @Test func twoWordEncodingRoundIsExact() throws {
        var m = try machine(silos: 5, precisionBits: 40)
        let ps = parties(5)
        let (event, sessions) = try run(&m, ps, updates: updates(ps), leaving: ["s2": .afterShares])
        guard case .roundClosed(let closed) = event else {
            Issue.record("round should close, got \(event)")
            return
        }
        let task = sessions["s0"]!.task
        #expect(try task.encoding().words == 2)
        #expect(sessions["s0"]!.input.count == 12)
        var sum = [UInt32](repeating: 0, count: 12)
        let survivors = ["s0", "s1", "s3", "s4"]
        for s in survivors { sum.addModular(sessions[s]!.input) }
        let weight = survivors.reduce(0.0) { $0 + sessions[$1]!.task.weight }
        #expect(closed.newWeights == (try task.encoding().decode(sum: sum).map { $0 * Float(1 / weight) }))
    }

    @Test func tooFewSurvivorsAbandonsTheRoundAndARetryUsesAFreshContext() throws {
        var m = try machine(silos: 5)
        let ps = parties(5)
        let first = try open(&m, ps)["s0"]!.context
        m = try machine(silos: 5)
        let (event, _) = try run(&m, ps, updates: updates(ps), leaving: ["s1": .afterShares, "s2": .afterShares, "s3": .afterShares])
        guard case .roundAbandoned(let round, let reason) = event else {
            Issue.record("round should abort with 2 of 5 silos, got \(event)")
            return
        }
        #expect(round == 1)
        #expect(reason.contains("fewer than the threshold 3"))
        #expect(m.completedRounds == 0)
        let retry = try open(&m, ps)
        #expect(retry.count == 5)
        #expect(retry["s0"]!.context != first)
    }

    @Test func plainUpdatesAndOutOfTurnMessagesAreRefusedWithoutHarm() throws {
        var m = try machine(silos: 3)
        let ps = parties(3)
        let tasks = try open(&m, ps)
        #expect(throws: FederationError.self) {
            try m.submit(from: ps[0].info, runID: "run-1", round: 1, update: [Float](repeating: 0, count: 6),
                         trainLoss: 0, trainSeconds: 0, now: 1)
        }
        var session = try SecureSiloSession(siloID: "s0", identity: ps[0].identity, task: tasks["s0"]!,
                                            update: [Float](repeating: 0, count: 6))
        let masked = SecureRound.Message.maskedInput(context: tasks["s0"]!.context, [UInt32](repeating: 0, count: 6))
        #expect(throws: FederationError.self) { try m.secure(masked, from: "s0", runID: "run-1", round: 1, now: 1) }
        #expect(throws: FederationError.self) {
            try m.secure(session.start(.init(silo: "s0", examples: 10, trainLoss: 0, trainSeconds: 0)), from: "s0",
                         runID: "run-1", round: 2, now: 1)
        }
        // A forged advertisement (signed by another key) is refused and the silo may still send its own.
        let impostor = try SecureSiloSession(siloID: "s1", identity: ps[1].identity, task: tasks["s1"]!,
                                             update: [Float](repeating: 0, count: 6))
        var forged = impostor
        guard case .keys(var ad, let stats) = forged.start(.init(silo: "s1", examples: 20, trainLoss: 0, trainSeconds: 0)) else {
            Issue.record("first message must be keys")
            return
        }
        ad.signature[0] ^= 1
        #expect(throws: FederationError.self) { try m.secure(.keys(ad, stats), from: "s1", runID: "run-1", round: 1, now: 1) }
        #expect(try m.secure(session.start(.init(silo: "s0", examples: 10, trainLoss: 0, trainSeconds: 0)), from: "s0",
                             runID: "run-1", round: 1, now: 1).isNone)
        #expect(m.stateSummary.contains("phase advertising"))
    }

    @Test func silosWithoutOrWithChangedIdentityKeysAreRefused() throws {
        var m = try machine(silos: 5)
        let bare = SiloInfo(id: "old-agent", examples: 10, features: 2, classes: 2)
        #expect(throws: FederationError.self) { try m.requestWork(from: bare, now: 0) }
        let p = Party("s0", examples: 10)
        _ = try m.requestWork(from: p.info, now: 0)
        var changed = p.info
        changed.identityKey = Ed25519KeyPair().publicKey
        #expect(throws: FederationError.self) { try m.requestWork(from: changed, now: 0) }
    }

    @Test func secureSimulationLearnsWithDropouts() throws {
        let train = Fixtures.blobs(count: 2000, features: 8, classes: 3, seed: 1, spread: 1.2)
        let test = Fixtures.blobs(count: 300, features: 8, classes: 3, seed: 2, spread: 1.2)
        let parts = try Partitioner.partition(labels: train.labels, classCount: 3, silos: 12, scheme: .iid, seed: 4)
        let silos = parts.enumerated().map { Simulation.Silo(id: "silo-\($0.offset)", data: train.subset($0.element)) }
        let spec = try RunSpec(name: "sim", model: ModelSpec(architecture: .logreg, inputFeatures: 8, hidden: [], classCount: 3),
                               rounds: 3, training: TrainingConfig(localEpochs: 1, batchSize: 8, learningRate: 0.05, momentum: 0),
                               minSilos: 6, silosPerRound: 12, secureAggregation: SecureAggregationConfig(dropoutRate: 0.2))
        var sim = Simulation(spec: spec, silos: silos, dropoutRate: 0.15, seed: 5)
        let reports = try sim.run(evaluateOn: test)
        #expect(reports.count == 3)
        #expect(reports.allSatisfy { $0.contributors + $0.dropped == 12 })
        #expect(reports.last!.evaluation!.accuracy > 0.85)
    }
}
