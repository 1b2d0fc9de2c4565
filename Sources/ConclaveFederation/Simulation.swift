public import ConclaveLearning

/// A whole federation in one process: the round state machine plus in-memory silos, no sockets.
/// Used to test round logic with hundreds of silos and to tune runs before deploying them.
public struct Simulation {
    public struct Silo: Sendable {
        public var info: SiloInfo
        public var data: Dataset
        public init(id: String, data: Dataset) {
            self.info = SiloInfo(id: id, examples: UInt64(data.count), features: data.featureCount,
                                 classes: data.classCount)
            self.data = data
        }
    }

    public struct RoundReport: Sendable {
        public var round: Int
        public var contributors: Int
        public var dropped: Int
        public var evaluation: EvaluationResult?
    }

    public var machine: RoundStateMachine
    public let silos: [Silo]
    /// Probability that a selected silo never sends its update (it "drops").
    public var dropoutRate: Double
    private var rng: SeededGenerator
    private var clock = 0.0

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
            var tasks = [(Silo, Int, [Float])]()
            // Two polls each: the first announces every silo, the second picks up the round that opens.
            for pass in 0..<2 {
                for silo in silos where pass == 0 || !tasks.contains(where: { $0.0.info.id == silo.info.id }) {
                    if case .train(let round, let weights, _) = try machine.requestWork(from: silo.info, now: clock) {
                        tasks.append((silo, round, weights))
                    }
                }
            }
            var closed: RoundStateMachine.ClosedRound?
            var dropped = 0
            for (silo, round, weights) in tasks {
                if dropoutRate > 0, rng.nextUnitOpen() < dropoutRate {
                    dropped += 1
                    continue
                }
                let result = try LocalUpdate.compute(model: machine.spec.model, training: machine.spec.training,
                                                     round: round, globalWeights: weights, siloID: silo.info.id,
                                                     data: silo.data)
                let event = try machine.submit(from: silo.info, runID: machine.runID, round: round,
                                               update: result.update, trainLoss: result.trainLoss,
                                               trainSeconds: result.seconds, now: clock)
                if case .roundClosed(let c) = event { closed = c }
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
            let report = RoundReport(round: closed.number, contributors: closed.contributions.count,
                                     dropped: dropped, evaluation: evaluation)
            reports.append(report)
            onRound(report)
        }
        return reports
    }
}
