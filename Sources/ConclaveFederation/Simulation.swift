public import ConclaveLearning
public import ConclaveCrypto

/// A whole federation in one process: the round state machine plus in-memory silos, no sockets.
/// Used to test round logic with hundreds of silos and to tune runs before deploying them. With secure
/// aggregation in the spec, every round runs the whole protocol (`SecureSiloSession` ↔ `SecureRound`).
public struct Simulation {
    public struct Silo: Sendable {
        public var info: SiloInfo
        public var data: Dataset
        public let identity: Ed25519KeyPair
        public init(id: String, data: Dataset) {
            self.identity = Ed25519KeyPair()
            self.info = SiloInfo(id: id, examples: UInt64(data.count), features: data.featureCount,
                                 classes: data.classCount, identityKey: identity.publicKey)
            self.data = data
        }
    }

    public struct RoundReport: Sendable {
        public var round: Int
        public var contributors: Int
        public var dropped: Int
        public var evaluation: EvaluationResult?
        /// What the round's release cost (central: the run's ε so far; record: the largest silo's).
        public var privacy: RoundStateMachine.PrivacySpent?
        /// Record mode: each contributor's own cumulative spend.
        public var siloPrivacy: [String: SiloPrivacy] = [:]
    }

    public var machine: RoundStateMachine
    public let silos: [Silo]
    /// Probability that a selected silo never sends its update (it "drops").
    public var dropoutRate: Double
    private var rng: SeededGenerator
    private var clock = 0.0
    /// Record mode: each silo's DP-SGD plan and how many rounds it has trained in (its own ledger).
    public private(set) var recordPlans: [String: RecordPrivacyPlan] = [:]
    public private(set) var roundsTrained: [String: Int] = [:]

    public init(spec: RunSpec, silos: [Silo], dropoutRate: Double = 0, seed: UInt64 = 7) {
        self.machine = RoundStateMachine(runID: "simulation", spec: spec,
                                         globalWeights: spec.model.initialParameters(seed: spec.seed))
        self.silos = silos
        self.dropoutRate = dropoutRate
        self.rng = SeededGenerator(seed: seed)
    }

    /// Runs until the state machine finishes or `maxAttempts` round attempts have been made.
    public mutating func run(evaluateOn test: Dataset? = nil, maxAttempts: Int? = nil,
                             onRound: (RoundReport) -> Void = { _ in }) throws -> [RoundReport] {
        var reports = [RoundReport]()
        var attempts = 0
        while !machine.isFinished, attempts < (maxAttempts ?? machine.spec.rounds * 3) {
            attempts += 1
            clock += 1
            var tasks = [(Silo, Int, [Float], SecureTask?)]()
            // Two polls each: the first announces every silo, the second picks up the round that opens.
            for pass in 0..<2 {
                for silo in silos where pass == 0 || !tasks.contains(where: { $0.0.info.id == silo.info.id }) {
                    if case .train(let round, let weights, _, let secure) = try machine.requestWork(from: silo.info, now: clock) {
                        tasks.append((silo, round, weights, secure))
                    }
                }
            }
            var closed: RoundStateMachine.ClosedRound?
            var dropped = 0
            var sessions = [String: SecureSiloSession]()
            var outbox = [(String, SecureRound.Message)]()
            for (silo, round, weights, secure) in tasks {
                if dropoutRate > 0, rng.nextUnitOpen() < dropoutRate {
                    dropped += 1  // never reports (in a secure round: never joins, so advertising waits for the deadline)
                    continue
                }
                let plan = try recordPlan(for: silo)
                let result = try LocalUpdate.compute(model: machine.spec.model, training: machine.spec.training,
                                                     round: round, globalWeights: weights, siloID: silo.info.id,
                                                     data: silo.data, privacy: plan)
                var report: SiloPrivacy?
                if let plan {
                    roundsTrained[silo.info.id, default: 0] += 1
                    report = plan.spent(afterRounds: roundsTrained[silo.info.id]!)
                }
                if let secure {
                    var session = try SecureSiloSession(siloID: silo.info.id, identity: silo.identity, task: secure,
                                                        update: result.update)
                    outbox.append((silo.info.id, session.start(.init(silo: silo.info.id, examples: silo.info.examples,
                                                                      trainLoss: result.trainLoss, trainSeconds: result.seconds,
                                                                      privacy: report))))
                    sessions[silo.info.id] = session
                    continue
                }
                let event = try machine.submit(from: silo.info, runID: machine.runID, round: round,
                                               update: result.update, trainLoss: result.trainLoss,
                                               trainSeconds: result.seconds, privacy: report, now: clock)
                if case .roundClosed(let c) = event { closed = c }
            }
            // Secure rounds: relay messages, and let phase deadlines pass, until the round closes or aborts.
            var ended = sessions.isEmpty
            func relay(_ event: RoundStateMachine.Event) throws {
                switch event {
                case .secureAdvanced(_, let replies):
                    for (to, reply) in replies.sorted(by: { $0.key < $1.key }) {
                        outbox.append((to, try sessions[to]!.respond(to: reply)))
                    }
                case .roundClosed(let c):
                    closed = c
                    ended = true
                case .roundAbandoned:
                    outbox = []
                    ended = true
                case .none: break
                }
            }
            while !ended, let round = tasks.first?.1 {
                while !outbox.isEmpty {
                    let (from, message) = outbox.removeFirst()
                    try relay(machine.secure(message, from: from, runID: machine.runID, round: round, now: clock))
                }
                if !ended {
                    clock += machine.spec.roundDeadlineSeconds
                    try relay(machine.tick(now: clock))
                }
            }
            if closed == nil, !tasks.isEmpty {
                clock += machine.spec.roundDeadlineSeconds
                if case .roundClosed(let c) = machine.tick(now: clock) { closed = c }
            }
            guard let closed else { continue }
            machine.roundCommitted()
            let evaluation = try test.map { test throws(DataError) in
                try Evaluator.evaluate(spec: machine.spec.model, parameters: closed.newWeights, data: test)
            }
            var siloPrivacy = [String: SiloPrivacy]()
            for c in closed.contributions { if let p = c.privacy { siloPrivacy[c.silo] = p } }
            let report = RoundReport(round: closed.number, contributors: closed.contributions.count, dropped: dropped,
                                     evaluation: evaluation, privacy: closed.privacy, siloPrivacy: siloPrivacy)
            reports.append(report)
            onRound(report)
        }
        return reports
    }

    /// The silo's plan in a record-mode run (made on its first round, as an agent does); nil otherwise.
    private mutating func recordPlan(for silo: Silo) throws(FederationError) -> RecordPrivacyPlan? {
        guard let privacy = machine.spec.privacy, privacy.mode == .record else { return nil }
        if let plan = recordPlans[silo.info.id] { return plan }
        let plan = try RecordPrivacyPlan(privacy: privacy, examples: silo.data.count, training: machine.spec.training,
                                         plannedRounds: machine.spec.rounds)
        recordPlans[silo.info.id] = plan
        return plan
    }
}
