import ConclaveFederation
import ConclaveLearning
import Testing

@Suite struct RoundStateMachineTests {
    static let model = try! ModelSpec(architecture: .logreg, inputFeatures: 2, hidden: [], classCount: 2)  // 6 parameters

    func machine(minSilos: Int = 2, perRound: Int? = nil, allowed: Set<String>? = nil, rounds: Int = 3,
                 server: ServerOptimizerConfig = ServerOptimizerConfig()) throws -> RoundStateMachine {
        let spec = try RunSpec(name: "t", model: Self.model, rounds: rounds, training: TrainingConfig(), minSilos: minSilos,
                               silosPerRound: perRound, roundDeadlineSeconds: 10, server: server)
        return RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 6),
                                 allowedSilos: allowed)
    }

    func silo(_ id: String, examples: UInt64 = 10) -> SiloInfo {
        SiloInfo(id: id, examples: examples, features: 2, classes: 2)
    }

    /// Polls every silo twice (announce, then pick up the round) and returns those told to train.
    func open(_ m: inout RoundStateMachine, _ silos: [SiloInfo], now: Double = 0) throws -> [String] {
        var training = Set<String>()
        for _ in 0..<2 {
            for s in silos {
                if case .train = try m.requestWork(from: s, now: now) { training.insert(s.id) }
            }
        }
        return training.sorted()
    }

    @Test func fedAvgWeightsUpdatesByExampleCount() throws {
        var m = try machine()
        let a = silo("a", examples: 30), b = silo("b", examples: 10)
        #expect(try open(&m, [a, b]) == ["a", "b"])
        #expect(try m.submit(from: a, runID: "run-1", round: 1, update: [4, 4, 4, 4, 4, 4], trainLoss: 1, trainSeconds: 0, now: 1)
                .isNone)
        guard case .roundClosed(let closed) = try m.submit(from: b, runID: "run-1", round: 1, update: [0, 0, 0, 0, 0, 8],
                                                            trainLoss: 3, trainSeconds: 0, now: 2) else {
            Issue.record("round should close when every selected silo reported")
            return
        }
        // (30·4 + 10·0)/40 = 3 and (30·4 + 10·8)/40 = 5
        #expect(closed.newWeights == [3, 3, 3, 3, 3, 5])
        #expect(closed.examples == 40)
        #expect(closed.trainLoss == 1.5)
        #expect(m.globalWeights == [0, 0, 0, 0, 0, 0], "weights change only once the round is committed")
        m.roundCommitted()
        #expect(m.globalWeights == [3, 3, 3, 3, 3, 5])
        #expect(m.completedRounds == 1)
    }

    @Test func roundWaitsForQuorumOfLiveSilos() throws {
        var m = try machine(minSilos: 3)
        guard case .wait(let reason) = try m.requestWork(from: silo("a"), now: 0) else {
            Issue.record("one silo must not open a round needing three")
            return
        }
        #expect(reason.contains("1 of 3"))
    }

    @Test func deadlineClosesWithQuorumAndAbandonsWithout() throws {
        var m = try machine(minSilos: 2, perRound: 3)
        let silos = [silo("a"), silo("b"), silo("c")]
        #expect(try open(&m, silos).count == 3)
        _ = try m.submit(from: silos[0], runID: "run-1", round: 1, update: [1, 1, 1, 1, 1, 1], trainLoss: 0, trainSeconds: 0, now: 1)
        #expect(m.tick(now: 5).isNone)
        guard case .roundAbandoned(let round, _) = m.tick(now: 11) else {
            Issue.record("one of two required updates by the deadline must abandon the round")
            return
        }
        #expect(round == 1)
        #expect(m.completedRounds == 0)
        // Retried with the same number; now two report before the deadline.
        #expect(try open(&m, silos, now: 20).count == 3)
        for s in silos.prefix(2) {
            _ = try m.submit(from: s, runID: "run-1", round: 1, update: [2, 2, 2, 2, 2, 2], trainLoss: 0, trainSeconds: 0, now: 21)
        }
        guard case .roundClosed(let closed) = m.tick(now: 31) else {
            Issue.record("two of two required updates must close the round at the deadline")
            return
        }
        #expect(closed.contributions.map(\.silo) == ["a", "b"])
        #expect(closed.newWeights == [2, 2, 2, 2, 2, 2])
    }

    @Test func badUpdatesAreRefusedAndLeaveTheRoundIntact() throws {
        var m = try machine(minSilos: 2)
        let a = silo("a"), b = silo("b")
        _ = try open(&m, [a, b])
        let wrongSize = #expect(throws: FederationError.self) {
            try m.submit(from: a, runID: "run-1", round: 1, update: [1, 2, 3], trainLoss: 0, trainSeconds: 0, now: 1)
        }
        #expect(wrongSize?.code == .invalidArgument)
        #expect(wrongSize?.message.contains("3 values") == true)
        let nan = #expect(throws: FederationError.self) {
            try m.submit(from: a, runID: "run-1", round: 1, update: [1, .nan, 0, 0, 0, 0], trainLoss: 0, trainSeconds: 0, now: 1)
        }
        #expect(nan?.message.contains("non-finite") == true)
        let closedRound = #expect(throws: FederationError.self) {
            try m.submit(from: a, runID: "run-1", round: 7, update: [0, 0, 0, 0, 0, 0], trainLoss: 0, trainSeconds: 0, now: 1)
        }
        #expect(closedRound?.code == .failedPrecondition)
        #expect(closedRound?.message.contains("round 7") == true)
        let otherRun = #expect(throws: FederationError.self) {
            try m.submit(from: a, runID: "run-2", round: 1, update: [0, 0, 0, 0, 0, 0], trainLoss: 0, trainSeconds: 0, now: 1)
        }
        #expect(otherRun?.code == .failedPrecondition)
        _ = try m.submit(from: a, runID: "run-1", round: 1, update: [1, 1, 1, 1, 1, 1], trainLoss: 0, trainSeconds: 0, now: 1)
        let twice = #expect(throws: FederationError.self) {
            try m.submit(from: a, runID: "run-1", round: 1, update: [1, 1, 1, 1, 1, 1], trainLoss: 0, trainSeconds: 0, now: 1)
        }
        #expect(twice?.code == .alreadyExists)
        guard case .roundClosed(let closed) = try m.submit(from: b, runID: "run-1", round: 1, update: [3, 3, 3, 3, 3, 3],
                                                            trainLoss: 0, trainSeconds: 0, now: 2) else {
            Issue.record("round should close")
            return
        }
        #expect(closed.newWeights == [2, 2, 2, 2, 2, 2], "refused updates must not have touched the sum")
    }

    @Test func unknownAndMisshapenSilosAreRefused() throws {
        var m = try machine(allowed: ["a", "b"])
        let stranger = #expect(throws: FederationError.self) { try m.requestWork(from: silo("z"), now: 0) }
        #expect(stranger?.code == .permissionDenied)
        #expect(stranger?.message == "silo 'z' is not a member of this federation")
        let wide = #expect(throws: FederationError.self) {
            try m.requestWork(from: SiloInfo(id: "a", examples: 5, features: 3, classes: 2), now: 0)
        }
        #expect(wide?.code == .failedPrecondition)
        #expect(wide?.message.contains("3 features") == true)
        let classes = #expect(throws: FederationError.self) {
            try m.requestWork(from: SiloInfo(id: "a", examples: 5, features: 2, classes: 5), now: 0)
        }
        #expect(classes?.message.contains("5 classes") == true)
        #expect(m.liveSilos(now: 0).isEmpty, "refused silos are not counted as live")
    }

    @Test func selectionSamplesSilosPerRound() throws {
        var m = try machine(minSilos: 2, perRound: 3)
        let silos = (1...10).map { silo("s\($0)") }
        // Round 1 opens as soon as three silos are live, so it takes the first three.
        #expect(try open(&m, silos) == ["s1", "s2", "s3"])
        for id in ["s1", "s2", "s3"] {
            _ = try m.submit(from: silo(id), runID: "run-1", round: 1, update: [0, 0, 0, 0, 0, 0], trainLoss: 0,
                             trainSeconds: 0, now: 1)
        }
        m.roundCommitted()
        // Round 2 samples three of the ten live silos.
        let chosen = try open(&m, silos, now: 2)
        #expect(chosen.count == 3)
        guard case .collecting(let round) = m.state else { Issue.record("round should be open"); return }
        #expect(round.selected == Set(chosen))
        #expect(round.number == 2)
    }

    @Test func abandonedCommitKeepsTheOldWeightsAndRetries() throws {
        var m = try machine(minSilos: 1)
        let a = silo("a")
        _ = try open(&m, [a])
        _ = try m.submit(from: a, runID: "run-1", round: 1, update: [1, 1, 1, 1, 1, 1], trainLoss: 0, trainSeconds: 0, now: 1)
        #expect(m.abandonRound() == 1)
        #expect(m.globalWeights == [0, 0, 0, 0, 0, 0])
        #expect(try open(&m, [a], now: 2) == ["a"])
        guard case .collecting(let round) = m.state else { Issue.record("round should reopen"); return }
        #expect(round.number == 1)
    }

    @Test func runFinishesAfterItsRounds() throws {
        var m = try machine(minSilos: 1, rounds: 2)
        let a = silo("a")
        for round in 1...2 {
            _ = try open(&m, [a], now: Double(round))
            _ = try m.submit(from: a, runID: "run-1", round: round, update: [1, 0, 0, 0, 0, 0], trainLoss: 0, trainSeconds: 0,
                             now: Double(round))
            m.roundCommitted()
        }
        #expect(m.isFinished)
        #expect(m.globalWeights == [2, 0, 0, 0, 0, 0])
        guard case .finished = try m.requestWork(from: a, now: 9) else { Issue.record("finished run hands out no work"); return }
    }
}

extension RoundStateMachine.Event {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
