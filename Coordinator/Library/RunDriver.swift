import ConclaveSupport
import ConclaveWireConversions
public import ConclaveConfig
public import ConclaveFederation
import ConclaveLearning
public import ConclaveStorage
import ConclaveCrypto
import ConclavePrivacy
import SwiftProtobuf
import ConclaveWire
import ConclaveSecAgg
public import Logging

/// Drives the active run: owns its `RoundStateMachine`, persists every closed round (checkpoint file, then
/// one database transaction) before the machine moves on, and activates the next pending run when one ends.
/// The gRPC services and the deadline ticker call into it; it is the only writer of the database.
public actor RunDriver {
    nonisolated public let store: CoordinatorStore
    nonisolated public let checkpoints: CheckpointStore
    nonisolated public let config: CoordinatorConfig
    nonisolated public let metrics: CoordinatorMetrics
    var logger: Logger
    var machine: RoundStateMachine?
    var evaluation: Dataset?
    private var lastRecorded: [String: Double] = [:]
    /// Where each secure-aggregation answer goes (the protocol's own state lives in the machine's `SecureRound`).
    var mailbox = SecureMailbox()
    /// The `round_attempts` row of the attempt in flight ("open" until it commits or is abandoned).
    var attemptID: Int64?
    /// A round whose aggregate is computed but not yet durable: kept and retried with backoff, never recomputed.
    var pendingCommit: PendingCommit?
    /// Why the last commit failed, while it keeps failing ("storage fault: …" in the run's status).
    public internal(set) var storageFault: String?
    /// The open secure attempt's durable log.
    var attemptLog: SecureAttemptLog?
    /// Set by `shutdown()`: nothing more is accepted into the round in flight (its log is closed).
    var stopping = false
    /// When the open secure phase began (for the phase-duration metric).
    var phaseStartedAt = 0.0
    /// Runs whose activation failed and were marked, so a poll does not retry (and log) them again.
    var unresumable: Set<String> = []

    /// The privacy ledger (replayed from the database when first needed) and the key that signs it.
    var ledger = PrivacyLedger()
    var ledgerKey: Ed25519KeyPair?
    /// Set once the stored ledger replayed and its chain verified; until then no DP release is made.
    var ledgerReady = false
    /// The ledger's Merkle tree, caught up with the entries when a silo witnesses, and the newest checkpoint.
    var merkle = MerkleLog()
    var newestCheckpoint: LedgerCheckpoint?

    /// Whether secure attempts are logged durably (always, but for the benchmark that measures their cost).
    nonisolated let durableAttempts: Bool

    public init(config: CoordinatorConfig, logger: Logger, metrics: CoordinatorMetrics = CoordinatorMetrics(),
                durableAttempts: Bool = true) throws(StorageError) {
        self.config = config
        self.durableAttempts = durableAttempts
        self.metrics = metrics
        self.store = try CoordinatorStore(path: config.database)
        self.checkpoints = try CheckpointStore(directory: config.checkpointDirectory)
        self.logger = logger
    }

    /// Picks up a run left running by a previous process (from its last committed round), or the oldest pending one.
    public func resume() {
        guard machine == nil else { return }
        let record: CoordinatorStore.RunRecord
        do {
            guard let next = try store.nextRunToDrive(), !unresumable.contains(next.id) else { return }
            record = next
        } catch {
            logger.error("cannot read the runs to resume", metadata: ["error": "\(error)"])
            return
        }
        do { try activate(record) } catch {
            // Logged once; the run is marked so polls do not retry it (needs-repair, or failed).
            unresumable.insert(record.id)
            logger.error("cannot resume run", metadata: ["run": "\(record.id)", "error": "\(error)"])
        }
    }

    private func activate(_ record: CoordinatorStore.RunRecord) throws {
        let spec = record.spec
        var weights = spec.model.initialParameters(seed: spec.seed)
        var optimizer: ServerOptimizer?
        if record.completedRounds > 0 {
            let rounds = try store.rounds(run: record.id)
            guard let last = rounds.last else { throw StorageError("run \(record.id) lost its rounds") }
            do {
                let checkpoint = try checkpoints.load(sha256: last.checkpointSHA256, model: spec.model, server: spec.server)
                weights = checkpoint.weights
                optimizer = checkpoint.serverOptimizer
            } catch {
                let message = "round \(last.round): \(error.message); resume from an earlier round with `conclave run resume \(record.id) --from-round N`"
                try store.setStatus(run: record.id, "needs-repair", message: message)
                logger.error("run needs repair", metadata: ["run": "\(record.id)", "round": "\(last.round)",
                                                            "checkpoint": "\(checkpoints.path(for: last.checkpointSHA256))",
                                                            "error": "\(error.message)"])
                unresumable.insert(record.id)
                resume()  // the next run may go on
                return
            }
        }
        do {
            evaluation = try spec.evaluation?.load(classCount: spec.model.classCount)
        } catch {
            try store.setStatus(run: record.id, "failed", message: "evaluation data: \(error.message)")
            logger.error("run failed", metadata: ["run": "\(record.id)", "error": "\(error.message)"])
            return
        }
        let history = try store.rounds(run: record.id)
        // Rounds discarded by a resume were released: their cost stays in the run's accounting.
        let discarded = try store.discardedRounds(run: record.id)
        let shares = discarded.compactMap { r in r.unmasked.map { (members: $0 + (r.dropped ?? 0), shares: $0) } }
            + history.compactMap { r in r.unmasked.map { (members: $0 + (r.dropped ?? 0), shares: $0) } }
        machine = RoundStateMachine(runID: record.id, spec: spec, globalWeights: weights,
                                    completedRounds: record.completedRounds, serverOptimizer: optimizer,
                                    allowedSilos: config.allowedSilos, livenessSeconds: config.livenessSeconds,
                                    noiseShares: shares, clipNorm: history.last?.nextClipNorm,
                                    discardedReleases: discarded.count)
        try store.setStatus(run: record.id, "running")
        _ = restoreAttempt()
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
        if let allowed = config.allowedSilos {
            let needed = max(spec.minSilos, spec.silosPerRound ?? 0)
            guard needed <= allowed.count else {
                throw FederationError(.invalidArgument,
                    "\(source): the run needs \(needed) silos per round (min_silos / silos_per_round), but this federation allows only \(allowed.count) (federation.allowed_silos)")
            }
        }
        if let p = spec.privacy, p.mode != .record {
            // A release the ledger cannot price may not start (record mode is priced per silo, from its records).
            var probe = RoundStateMachine(runID: "probe", spec: spec, globalWeights: Array(repeating: 0, count: spec.model.parameterCount))
            let release = probe.plannedRelease(for: SiloInfo(id: "probe", examples: 1, features: spec.model.inputFeatures,
                                                             classes: spec.model.classCount))
            do throws(PrivacyError) {
                guard let release else { throw PrivacyError("no mechanism") }
                try release.mechanism.validate()
            } catch {
                throw FederationError(.invalidArgument, "\(source): the run's \(p.mode.rawValue)-DP release cannot be priced for the privacy ledger: \(error.message)")
            }
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
        /// Central DP with adaptive clipping: the count noise σ_b of this round (silos price their release with it).
        public var countNoiseStddev: Double? = nil
    }

    /// What a secure-aggregation handler tells its silo next.
    public enum SecureOutcome: Sendable {
        case reply(SecureRound.Reply)
        /// The round ended for this silo: committed (`completed`) or not, with the reason.
        case result(completed: Bool, message: String, unmasked: Int, dropped: Int)
        /// The coordinator is stopping with the attempt left open: the stream ends with UNAVAILABLE, so the
        /// silo resumes the attempt when the coordinator is back instead of taking it as over.
        case interrupted(String)

        static func failed(_ message: String) -> SecureOutcome {
            .result(completed: false, message: message, unmasked: 0, dropped: 0)
        }
    }

    public enum Work: Sendable {
        case train(Task)
        case wait(String)
    }

    public func requestWork(from silo: SiloInfo) throws(FederationError) -> Work {
        try checkMember(silo)
        // Enrolled identities are only read, so the key is checked at once, run or no run; trust on first
        // use (plaintext) stores the key, so it waits until the run admitted the silo.
        if config.tls != nil { try checkIdentity(silo, now: WallClock.now()) }
        guard !stopping else { return .wait("the coordinator is shutting down") }
        if machine == nil { resume() }
        guard machine != nil else { return .wait("no run is active") }
        let now = WallClock.now()
        try machine!.admit(silo)  // data that cannot train this run: refused before anything is stored
        if config.tls == nil { try checkIdentity(silo, now: now) }
        let wasOpen = machine?.openRoundNumber
        gateBudget(silo, now: now)
        if machine!.budgetExhausted(now: now) {
            endForBudget()
            return .wait("no privacy budget affords another round of the run")
        }
        let decision = try machine!.requestWork(from: silo, now: now)
        recordSilo(silo, now: now)
        let open = machine?.openRoundNumber
        if let open, open != wasOpen { attemptOpened(round: open, now: now) }
        let runID = machine?.runID ?? ""
        switch decision {
        case .train(let round, let weights, let left, let secure):
            logger.debug("task sent", metadata: ["silo": "\(silo.id)", "round": "\(round)"])
            metrics.sent(values: weights.count)
            CrashHook.reach("task-sent")
            guard let spec = machine?.spec else { return .wait("no run is active") }
            return .train(Task(runID: runID, spec: spec, round: round, weights: weights, secondsLeft: left, secure: secure,
                               countNoiseStddev: secure.flatMap { machine?.centralMechanism(members: $0.members.count)?.countStddev }))
        case .wait(let reason):
            if open == nil { CrashHook.reach("idle") }
            return .wait(storageFault.map { "\(reason) (\($0); retrying)" } ?? reason)
        case .finished:
            return .wait("run \(runID) has finished")
        }
    }

    /// The federation's allowlist, checked first: nothing about a silo outside it is stored or kept.
    private func checkMember(_ silo: SiloInfo) throws(FederationError) {
        if let allowed = config.allowedSilos, !allowed.contains(silo.id) {
            throw FederationError(.permissionDenied, "silo '\(silo.id)' is not a member of this federation")
        }
    }

    private func attemptOpened(round: Int, now: Double) {
        guard let m = machine else { return }
        startAttemptLog(now: now)
        phaseStartedAt = now
        do { attemptID = try store.openAttempt(run: m.runID, round: round, now: now) } catch {
            attemptID = nil
            logger.warning("cannot record the round attempt", metadata: ["run": "\(m.runID)", "round": "\(round)", "error": "\(error)"])
        }
    }

    func attemptEnded(_ outcome: String, round: Int, reason: String) {
        endAttemptLog(outcome: outcome)
        guard let m = machine else { return }
        let now = WallClock.now()
        if let id = attemptID {
            try? store.closeAttempt(id: id, outcome: outcome, reason: reason, now: now)
        } else if outcome != "committed" {
            try? store.recordAttempt(run: m.runID, round: round, outcome: outcome, reason: reason, now: now)
        }
        attemptID = nil
    }

    /// With mutual TLS, the key must be the one bound to the silo id at enrolment. In plaintext mode
    /// (`insecure = true`) it is trust on first use: the first key a silo id presents is recorded and a
    /// different one is refused. Called only for silos the allowlist and the run admitted. The `silos` table
    /// is the one record of keys: no cache beside it.
    private func checkIdentity(_ silo: SiloInfo, now: Double) throws(FederationError) {
        if config.tls != nil {
            let enrolled: [UInt8]?
            do { enrolled = try store.identityKey(silo: silo.id) } catch {
                throw FederationError(.unavailable, "cannot check the identity of silo '\(silo.id)': \(error)")
            }
            guard let enrolled else {
                throw FederationError(.permissionDenied, "silo '\(silo.id)' has no identity key bound at enrolment; enrol it with 'conclave silo add'")
            }
            guard enrolled == silo.identityKey else {
                throw FederationError(.permissionDenied,
                    "silo '\(silo.id)' presented identity key \(silo.identityKey.hexString.prefix(16))…, but it enrolled with \(enrolled.hexString.prefix(16))…; restore the silo's identity key file or enrol it anew")
            }
            return
        }
        guard !silo.identityKey.isEmpty else { return }
        let onRecord: [UInt8]
        do {
            if let known = try store.identityKey(silo: silo.id) {
                onRecord = known
            } else {
                onRecord = try store.enrolIdentity(silo: silo.id, key: silo.identityKey, dataset: silo.dataset,
                                                   examples: silo.examples, now: now)
                if onRecord == silo.identityKey {
                    logger.info("silo identity on record", metadata: ["silo": "\(silo.id)",
                                                                      "key": "\(silo.identityKey.hexString.prefix(16))"])
                }
            }
        } catch {
            throw FederationError(.unavailable, "cannot check the identity of silo '\(silo.id)': \(error)")
        }
        guard onRecord == silo.identityKey else {
            throw FederationError(.permissionDenied,
                "silo '\(silo.id)' presented identity key \(silo.identityKey.hexString.prefix(16))…, but this coordinator knows it by \(onRecord.hexString.prefix(16))…; if the silo was reinstalled, restore its identity key file")
        }
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
        try checkMember(silo)
        guard machine != nil else {
            throw FederationError(.failedPrecondition, "round \(round) of run '\(runID)' is not open (no run is active)")
        }
        // In place: the machine's running sum is not copied for each update.
        let event = try machine!.submit(from: silo, runID: runID, round: round, update: update, trainLoss: trainLoss,
                                        trainSeconds: trainSeconds, privacy: privacy, now: WallClock.now())
        logger.info("update accepted", metadata: ["silo": "\(silo.id)", "round": "\(round)",
                                                  "examples": "\(silo.examples)"])
        handle(event)
    }

    /// The silo's agent will not take part in the round (its policy, or already masked into it).
    public func decline(from silo: SiloInfo, runID: String, round: Int, reason: DeclineReason,
                        detail: String, signature: [UInt8]) throws(FederationError) -> String {
        try checkMember(silo)
        // Only the silo itself may take itself out of a round: the statement must verify under its key on record.
        let key: [UInt8]?
        do { key = try store.identityKey(silo: silo.id) } catch {
            throw FederationError(.unavailable, "cannot check the identity of silo '\(silo.id)': \(error)")
        }
        guard let key, Ed25519.verify(signature: signature, message: SignedStatement.decline(runID: runID, round: round,
                                                                                              reason: reason, silo: silo.id),
                                      publicKey: key) else {
            throw FederationError(.permissionDenied,
                "decline for silo '\(silo.id)' is not signed by the identity key this coordinator has on record for it")
        }
        guard machine != nil else {
            throw FederationError(.failedPrecondition, "round \(round) of run '\(runID)' is not open (no run is active)")
        }
        let event = try machine!.decline(from: silo, runID: runID, round: round, reason: reason, now: WallClock.now())
        if reason == .privacyBudget {
            // The silo's own filter refused: it would refuse every later round too.
            leaveOut(silo.id, "the silo's own privacy budget refused round \(round): \(WireCheck.preview(detail, limit: 300))")
        }
        logAttempt([.with { $0.silo = silo.id; $0.declined = true }])
        metrics.declined(reason)
        logger.warning("silo declined the round", metadata: ["silo": "\(silo.id)", "round": "\(round)",
                                                             "reason": "\(reason.rawValue)", "detail": "\(detail)"])
        handle(event)
        return "silo '\(silo.id)' is left out of round \(round) (\(reason.rawValue))"
    }

    /// Called a few times a second: retries a pending commit when its backoff has passed, and closes or
    /// abandons rounds whose deadline passed.
    public func tick() {
        if pendingCommit != nil {
            retryCommitIfDue()
            return
        }
        guard machine != nil else { return }
        let now = WallClock.now()
        metrics.live(machine!.liveSilos(now: now).count)
        let event = machine!.tick(now: now)
        if attemptLog != nil, !event.isNone { logAttempt([.with { $0.deadline = true }]) }
        handle(event)
    }

    func handle(_ event: RoundStateMachine.Event) {
        guard let m = machine else { return }
        switch event {
        case .none:
            return
        case .secureAdvanced(let round, let replies):
            if case .collecting(let open) = m.state, let phase = open.secure?.phase { CrashHook.reach("secure-phase:\(phase)") }
            let now = WallClock.now()
            metrics.phaseClosed(phaseName(after: m), seconds: now - phaseStartedAt)
            phaseStartedAt = now
            mailbox.phaseClosed(replies: replies, round: round)
            logger.debug("secure phase closed", metadata: ["run": "\(m.runID)", "round": "\(round)", "silos": "\(replies.count)"])
        case .roundAbandoned(let round, let reason):
            logger.warning("round abandoned", metadata: ["run": "\(m.runID)", "round": "\(round)", "reason": "\(reason)"])
            metrics.roundAbandoned()
            attemptEnded("abandoned", round: round, reason: reason)
            mailbox.resolveAll(.failed("round \(round) abandoned: \(reason)"))
        case .roundClosed(let closed):
            pendingCommit = PendingCommit(closed: closed)
            commitPending()
        }
    }

    /// Stopping: the round in flight is abandoned (recorded) and will run again when the coordinator returns.
    /// A computed aggregate not yet durable is lost with the process, as after a crash. A secure attempt with a
    /// durable log is not abandoned but left open, exactly as a crash leaves it: silos may already have masked
    /// their update into it, and they would refuse a new attempt of the round (stalling the run), so the
    /// restarted coordinator resumes it from the log instead.
    public func shutdown() {
        stopping = true
        if attemptLog != nil, let round = machine?.roundInFlight {
            mailbox.resolveAll(.interrupted("the coordinator is shutting down; resume the attempt when it is back"))
            attemptLog = nil  // closes the file, keeps it
            pendingCommit = nil
            logger.info("secure attempt left open; the restarted coordinator resumes it from its log",
                        metadata: ["run": "\(machine?.runID ?? "")", "round": "\(round)"])
            return
        }
        mailbox.resolveAll(.failed("the coordinator is shutting down"))
        guard machine != nil, let round = machine!.abandonRound() else { return }
        pendingCommit = nil
        logger.info("round abandoned for shutdown", metadata: ["run": "\(machine!.runID)", "round": "\(round)"])
        attemptEnded("abandoned", round: round, reason: "coordinator shut down")
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
    public func expectedParameterCount(runID: String, round: Int, silo: String) throws(FederationError) -> Int {
        guard let m = machine, m.runID == runID, case .collecting(let open) = m.state, open.number == round else {
            throw FederationError(.failedPrecondition,
                "round \(round) of run '\(runID)' is not open (\(machine?.stateSummary ?? "no run is active"))")
        }
        guard open.selected.contains(silo), !open.hasReported(silo) else {
            throw FederationError(.failedPrecondition,
                "silo '\(silo)' was not selected for round \(round), or already sent its update")
        }
        return m.spec.model.parameterCount
    }

    /// The name of the phase that just closed, given the machine after the close (for metrics).
    private func phaseName(after m: RoundStateMachine) -> String {
        guard case .collecting(let open) = m.state, let phase = open.secure?.phase else { return "unmasking" }
        switch phase {
        case .sharing: return "advertising"
        case .collecting: return "sharing"
        case .checking: return "collecting"
        case .unmasking: return "checking"
        default: return "unmasking"
        }
    }

    /// For tests and status: a one-line summary of the active run's state.
    public var status: String {
        if let storageFault, let m = machine { return "\(storageFault) (\(m.stateSummary); retrying with backoff)" }
        return machine?.stateSummary ?? "idle"
    }
}
