public import ConclaveConfig
public import ConclaveFederation
import ConclaveLearning
public import ConclaveStorage
import ConclaveCrypto
public import Logging

/// Drives the active run: owns its `RoundStateMachine`, persists every closed round (checkpoint file, then
/// one database transaction) before the machine moves on, and activates the next pending run when one ends.
/// The gRPC services and the deadline ticker call into it; it is the only writer of the database.
public actor RunDriver {
    nonisolated public let store: CoordinatorStore
    nonisolated public let checkpoints: CheckpointStore
    nonisolated public let config: CoordinatorConfig
    private var logger: Logger
    private var machine: RoundStateMachine?
    private var evaluation: Dataset?
    private var lastRecorded: [String: Double] = [:]
    /// Identity keys on record, by silo id (a cache of the silos table).
    private var identities: [String: [UInt8]] = [:]
    /// Silos whose secure-aggregation message was taken and who have not yet collected the answer; the
    /// answer waits in the mailbox until the silo's handler asks, or wakes the handler already waiting.
    private var secureAwaiting: Set<String> = []
    private var secureMailbox: [String: SecureOutcome] = [:]
    private var secureWaiters: [String: CheckedContinuation<SecureOutcome, Never>] = [:]

    public init(config: CoordinatorConfig, logger: Logger) throws(StorageError) {
        self.config = config
        self.store = try CoordinatorStore(path: config.database)
        self.checkpoints = try CheckpointStore(directory: config.checkpointDirectory)
        self.logger = logger
    }

    /// Picks up a run left running by a previous process (from its last committed round), or the oldest pending one.
    public func resume() {
        guard machine == nil else { return }
        do {
            guard let record = try store.nextRunToDrive() else { return }
            try activate(record)
        } catch {
            logger.error("cannot resume run", metadata: ["error": "\(error)"])
        }
    }

    private func activate(_ record: CoordinatorStore.RunRecord) throws {
        let spec = record.spec
        var weights = spec.model.initialParameters(seed: spec.seed)
        var optimizer: ServerOptimizer?
        if record.completedRounds > 0 {
            let rounds = try store.rounds(run: record.id)
            guard let last = rounds.last else { throw StorageError("run \(record.id) lost its rounds") }
            let checkpoint = try checkpoints.load(sha256: last.checkpointSHA256, model: spec.model, server: spec.server)
            weights = checkpoint.weights
            optimizer = checkpoint.serverOptimizer
        }
        do {
            evaluation = try spec.evaluation?.load(classCount: spec.model.classCount)
        } catch {
            try store.setStatus(run: record.id, "failed", message: "evaluation data: \(error.message)")
            logger.error("run failed", metadata: ["run": "\(record.id)", "error": "\(error.message)"])
            return
        }
        let history = try store.rounds(run: record.id)
        machine = RoundStateMachine(runID: record.id, spec: spec, globalWeights: weights,
                                    completedRounds: record.completedRounds, serverOptimizer: optimizer,
                                    allowedSilos: config.allowedSilos, livenessSeconds: config.livenessSeconds,
                                    noiseShares: history.compactMap { r in r.unmasked.map { (members: $0 + (r.dropped ?? 0), shares: $0) } },
                                    clipNorm: history.last?.nextClipNorm)
        try store.setStatus(run: record.id, "running")
        logger.info("run active", metadata: ["run": "\(record.id)", "name": "\(spec.name)",
                                             "model": "\(spec.model.summary)", "from_round": "\(record.completedRounds + 1)",
                                             "rounds": "\(spec.rounds)"])
    }

    /// Registers a run from its spec. It starts now if no other run is active, else when those before it end.
    public func startRun(specTOML: String, source: String) throws -> CoordinatorStore.RunRecord {
        let spec: RunSpec
        do { spec = try RunSpecFile.parse(specTOML, source: source) } catch {
            throw FederationError(.invalidArgument, error.message)
        }
        if let source = spec.evaluation {
            do { _ = try source.load(classCount: spec.model.classCount) } catch {
                throw FederationError(.invalidArgument, "\(source.description): \(error.message)")
            }
        }
        let id = "run-" + SecureRandom.bytes(4).hexString
        try store.createRun(id: id, spec: spec, specTOML: specTOML, now: WallClock.now())
        logger.info("run created", metadata: ["run": "\(id)", "name": "\(spec.name)"])
        if machine == nil { resume() }
        guard let record = try store.run(id: id) else { throw StorageError("run \(id) vanished") }
        return record
    }

    public struct Task: Sendable {
        public var runID: String
        public var spec: RunSpec
        public var round: Int
        public var weights: [Float]
        public var secondsLeft: Double
        public var secure: SecureTask?
    }

    /// What a secure-aggregation handler tells its silo next.
    public enum SecureOutcome: Sendable {
        case reply(SecureRound.Reply)
        /// The round ended for this silo: committed (`completed`) or not, with the reason.
        case result(completed: Bool, message: String, unmasked: Int, dropped: Int)

        static func failed(_ message: String) -> SecureOutcome {
            .result(completed: false, message: message, unmasked: 0, dropped: 0)
        }
    }

    public enum Work: Sendable {
        case train(Task)
        case wait(String)
    }

    public func requestWork(from silo: SiloInfo) throws(FederationError) -> Work {
        if machine == nil { resume() }
        guard var m = machine else { return .wait("no run is active") }
        let now = WallClock.now()
        try checkIdentity(silo, now: now)
        let decision = try m.requestWork(from: silo, now: now)
        machine = m
        recordSilo(silo, now: now)
        switch decision {
        case .train(let round, let weights, let left, let secure):
            logger.debug("task sent", metadata: ["silo": "\(silo.id)", "round": "\(round)"])
            return .train(Task(runID: m.runID, spec: m.spec, round: round, weights: weights, secondsLeft: left,
                               secure: secure))
        case .wait(let reason):
            return .wait(reason)
        case .finished:
            return .wait("run \(m.runID) has finished")
        }
    }

    /// Trust on first use: the first identity key a silo id presents is recorded; a different one is refused.
    /// (Enrolment through a certificate authority replaces this when the PKI lands.)
    private func checkIdentity(_ silo: SiloInfo, now: Double) throws(FederationError) {
        guard !silo.identityKey.isEmpty else { return }
        guard silo.identityKey.count == 32 else {
            throw FederationError(.invalidArgument, "silo '\(silo.id)' sent a \(silo.identityKey.count)-byte identity key, not 32")
        }
        if identities[silo.id] == nil {
            do {
                identities[silo.id] = try store.enrolIdentity(silo: silo.id, key: silo.identityKey, dataset: silo.dataset,
                                                              examples: silo.examples, now: now)
            } catch {
                throw FederationError(.failedPrecondition, "cannot check the identity of silo '\(silo.id)': \(error)")
            }
            if identities[silo.id] == silo.identityKey {
                logger.info("silo identity on record", metadata: ["silo": "\(silo.id)",
                                                                  "key": "\(silo.identityKey.hexString.prefix(16))"])
            }
        }
        guard identities[silo.id] == silo.identityKey else {
            throw FederationError(.permissionDenied,
                "silo '\(silo.id)' presented identity key \(silo.identityKey.hexString.prefix(16))…, but this coordinator knows it by \(identities[silo.id]!.hexString.prefix(16))…; if the silo was reinstalled, restore its identity key file")
        }
    }

    /// Takes one secure-aggregation message (a masked input goes straight into the running sum, so the
    /// caller can drop its copy at once); the answer comes from `secureAnswer(for:)`.
    public func secureSubmit(_ message: SecureRound.Message, from silo: String, runID: String,
                             round: Int) throws(FederationError) {
        guard var m = machine else {
            throw FederationError(.failedPrecondition, "secure round \(round) of run '\(runID)' is not open (no run is active)")
        }
        let event = try m.secure(message, from: silo, runID: runID, round: round, now: WallClock.now())
        machine = m
        secureMailbox[silo] = nil
        secureAwaiting.insert(silo)
        handle(event)
    }

    /// Suspends until the phase the silo's last message answered closes.
    public func secureAnswer(for silo: String) async -> SecureOutcome {
        if let ready = secureMailbox.removeValue(forKey: silo) { return ready }
        guard secureAwaiting.contains(silo) else { return .failed("no secure-aggregation message from '\(silo)' is pending") }
        return await withCheckedContinuation { continuation in
            secureWaiters.removeValue(forKey: silo)?.resume(returning: .failed("superseded by a newer connection"))
            secureWaiters[silo] = continuation
        }
    }

    private func deliver(_ outcome: SecureOutcome, to silo: String) {
        guard secureAwaiting.remove(silo) != nil else { return }
        if let waiter = secureWaiters.removeValue(forKey: silo) {
            waiter.resume(returning: outcome)
        } else {
            secureMailbox[silo] = outcome
        }
    }

    /// A silo's secure-aggregation stream ended: it is not waited for again this round.
    public func secureLeft(_ silo: String, runID: String, round: Int) {
        guard var m = machine else { return }
        let event = m.secureLeft(silo, runID: runID, round: round, now: WallClock.now())
        machine = m
        logger.info("silo left the secure round", metadata: ["silo": "\(silo)", "round": "\(round)"])
        handle(event)
    }

    private func resolveSecureWaiters(_ outcome: SecureOutcome) {
        for silo in secureAwaiting { deliver(outcome, to: silo) }
    }

    private func recordSilo(_ silo: SiloInfo, now: Double) {
        guard now - (lastRecorded[silo.id] ?? 0) > 5 else { return }
        lastRecorded[silo.id] = now
        do { try store.touchSilo(id: silo.id, dataset: silo.dataset, examples: silo.examples, now: now) } catch {
            logger.warning("cannot record silo", metadata: ["silo": "\(silo.id)", "error": "\(error)"])
        }
    }

    /// The update has already been fully received and checked for shape by the service.
    public func submit(from silo: SiloInfo, runID: String, round: Int, update: [Float], trainLoss: Double,
                       trainSeconds: Double, privacy: SiloPrivacy? = nil) throws(FederationError) {
        guard var m = machine else {
            throw FederationError(.failedPrecondition, "round \(round) of run '\(runID)' is not open (no run is active)")
        }
        let event = try m.submit(from: silo, runID: runID, round: round, update: update, trainLoss: trainLoss,
                                 trainSeconds: trainSeconds, privacy: privacy, now: WallClock.now())
        machine = m
        logger.info("update accepted", metadata: ["silo": "\(silo.id)", "round": "\(round)",
                                                  "examples": "\(silo.examples)"])
        handle(event)
    }

    /// Called a few times a second: closes or abandons rounds whose deadline passed.
    public func tick() {
        guard var m = machine else { return }
        let event = m.tick(now: WallClock.now())
        machine = m
        handle(event)
    }

    private func handle(_ event: RoundStateMachine.Event) {
        guard var m = machine else { return }
        switch event {
        case .none:
            return
        case .secureAdvanced(let round, let replies):
            for (silo, reply) in replies { deliver(.reply(reply), to: silo) }
            for silo in secureAwaiting {
                deliver(.failed("left out of round \(round): the phase closed without this silo"), to: silo)
            }
            logger.debug("secure phase closed", metadata: ["run": "\(m.runID)", "round": "\(round)", "silos": "\(replies.count)"])
        case .roundAbandoned(let round, let reason):
            logger.warning("round abandoned", metadata: ["run": "\(m.runID)", "round": "\(round)", "reason": "\(reason)"])
            try? store.recordAttempt(run: m.runID, round: round, outcome: "abandoned", reason: reason, now: WallClock.now())
            resolveSecureWaiters(.failed("round \(round) abandoned: \(reason)"))
        case .roundClosed(let closed):
            do {
                try persist(closed, machine: m)
                m.roundCommitted()
                machine = m
                resolveSecureWaiters(.result(completed: true, message: "round \(closed.number) committed",
                                             unmasked: closed.secure?.unmasked ?? 0, dropped: closed.secure?.dropped ?? 0))
                if m.isFinished {
                    logger.info("run completed", metadata: ["run": "\(m.runID)", "rounds": "\(m.completedRounds)"])
                    machine = nil
                    evaluation = nil
                    resume()
                }
            } catch {
                _ = m.abandonRound()
                machine = m
                logger.error("round not saved; it will run again",
                             metadata: ["run": "\(m.runID)", "round": "\(closed.number)", "error": "\(error)"])
                try? store.recordAttempt(run: m.runID, round: closed.number, outcome: "abandoned",
                                         reason: "could not be saved: \(error)", now: WallClock.now())
                resolveSecureWaiters(.failed("round \(closed.number) could not be saved; it will run again"))
            }
        }
    }

    private func persist(_ closed: RoundStateMachine.ClosedRound, machine m: RoundStateMachine) throws {
        let result = try evaluation.map { data throws(DataError) in
            try Evaluator.evaluate(spec: m.spec.model, parameters: closed.newWeights, data: data)
        }
        let sha = try checkpoints.save(model: m.spec.model, weights: closed.newWeights,
                                       serverOptimizer: closed.serverOptimizer, runID: m.runID, round: closed.number)
        try store.commitRound(run: m.runID, closed: closed, checkpointSHA256: sha, checkpointPath: checkpoints.path(for: sha),
                              testAccuracy: result?.accuracy, testLoss: result?.loss, roundsPlanned: m.spec.rounds,
                              now: WallClock.now())
        var meta: Logger.Metadata = ["run": "\(m.runID)", "round": "\(closed.number)",
                                     "silos": "\(closed.contributions.count)", "examples": "\(closed.examples)",
                                     "checkpoint": "\(sha.prefix(16))",
                                     "seconds": "\(Double(Int((closed.closedAt - closed.startedAt) * 100)) / 100)"]
        if let result { meta["test_accuracy"] = "\(result.accuracy)" }
        if let privacy = closed.privacy {
            meta["epsilon"] = "\(privacy.epsilon)"
            meta["delta"] = "\(privacy.delta)"
        }
        if let secure = closed.secure {
            meta["unmasked"] = "\(secure.unmasked)"
            meta["dropped"] = "\(secure.dropped)"
        }
        logger.info("round closed", metadata: meta)
    }

    /// Stopping: the round in flight is abandoned (recorded) and will run again when the coordinator returns.
    public func shutdown() {
        resolveSecureWaiters(.failed("the coordinator is shutting down"))
        guard var m = machine, let round = m.abandonRound() else { return }
        machine = m
        logger.info("round abandoned for shutdown", metadata: ["run": "\(m.runID)", "round": "\(round)"])
        try? store.recordAttempt(run: m.runID, round: round, outcome: "abandoned", reason: "coordinator shut down",
                                 now: WallClock.now())
    }

    /// The weights of a run's newest (or given) committed round, read from its checkpoint.
    public func exportModel(runID: String, round: Int?) throws -> (spec: RunSpec, round: Int, sha: String, weights: [Float]) {
        guard let record = try store.run(id: runID) else { throw FederationError(.notFound, "no run '\(runID)'") }
        let rounds = try store.rounds(run: runID)
        let chosen = round.map { r in rounds.first { $0.round == r } } ?? rounds.last
        guard let chosen else {
            throw FederationError(.notFound, round.map { "run '\(runID)' has no committed round \($0)" }
                                  ?? "run '\(runID)' has no committed round yet")
        }
        let checkpoint = try checkpoints.load(sha256: chosen.checkpointSHA256, model: record.spec.model,
                                              server: record.spec.server)
        return (record.spec, chosen.round, chosen.checkpointSHA256, checkpoint.weights)
    }

    /// The parameter count an update for this run and round must have; refuses closed rounds early,
    /// before any of the update's data is read.
    public func expectedParameterCount(runID: String, round: Int) throws(FederationError) -> Int {
        guard let m = machine, m.runID == runID, case .collecting(let open) = m.state, open.number == round else {
            throw FederationError(.failedPrecondition,
                "round \(round) of run '\(runID)' is not open (\(machine?.stateSummary ?? "no run is active"))")
        }
        return m.spec.model.parameterCount
    }

    /// The 32-bit words a masked input for this secure round must have; refuses closed rounds early.
    public func expectedMaskedLength(runID: String, round: Int) throws(FederationError) -> Int {
        guard let m = machine, m.runID == runID, case .collecting(let open) = m.state, open.number == round,
              let secure = open.secure else {
            throw FederationError(.failedPrecondition,
                "secure round \(round) of run '\(runID)' is not open (\(machine?.stateSummary ?? "no run is active"))")
        }
        return secure.maskedLength
    }

    /// For tests and status: a one-line summary of the active run's state.
    public var status: String { machine?.stateSummary ?? "idle" }
}
