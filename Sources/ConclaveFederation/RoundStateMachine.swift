import ConclaveLearning

/// One run's rounds, as a pure state machine: silo polls, updates and clock ticks go in; decisions come out.
/// It performs no I/O. The caller persists a closed round and then calls `roundCommitted()`; until it does,
/// the round's result is pending and nothing moves on, so a crash or a failed write never loses a round.
public struct RoundStateMachine: Sendable {
    public let runID: String
    public let spec: RunSpec
    /// Silos allowed to join; nil admits any silo whose data fits the model.
    public let allowedSilos: Set<String>?
    /// A silo that has not polled for this long is no longer counted as live.
    public let livenessSeconds: Double

    public private(set) var globalWeights: [Float]
    public private(set) var serverOptimizer: ServerOptimizer
    /// Rounds committed so far; the next round is `completedRounds + 1`.
    public private(set) var completedRounds: Int
    public internal(set) var state: State
    var lastSeen: [String: Double] = [:]
    /// What each silo last said about itself (example counts weight the average; identity keys sign its
    /// secure-aggregation messages and may not change while the coordinator runs).
    var known: [String: SiloInfo] = [:]
    /// Distributed DP: each committed round's selected members and the noise shares its sum held.
    public private(set) var noiseShares: [(members: Int, shares: Int)]
    /// Silos that declined the next round because they already sent a masked input for it in an attempt that
    /// did not commit: they are not selected again for that round (cleared when it commits).
    public private(set) var sittingOut: Set<String> = []
    /// Silos whose privacy budget cannot afford another round of this run, with the reason: never selected.
    public private(set) var unaffordable: [String: String] = [:]
    var allLeftOutSince: Double?
    /// Record mode: each silo's DP-SGD plan for this run, by the record count it was made for (calibrated once;
    /// the silo calibrates the same from the same parameters).
    var recordPlans: [String: (examples: Int, plan: RecordPrivacyPlan?)] = [:]
    /// Releases of rounds an operator discarded when resuming from an earlier checkpoint: they happened, so
    /// central DP's accounting counts them on top of the round numbers.
    public let discardedReleases: Int
    /// The clip norm secure rounds use now: the spec's, or where adaptive clipping has moved it.
    public private(set) var clipNorm: Double?

    public enum State: Sendable {
        case waitingForSilos
        case collecting(OpenRound)
        case committing(ClosedRound)
        case finished
    }

    public struct OpenRound: Sendable {
        public let number: Int
        public let startedAt: Double
        public let deadline: Double
        public let selected: Set<String>
        public fileprivate(set) var contributions: [Contribution] = []
        /// Selected silos whose agents declined the task (their policy, or already masked into this round).
        public fileprivate(set) var declined: [String: DeclineReason] = [:]
        /// The running example-weighted sum of plain updates; nil in secure rounds, which sum masked inputs.
        var sum: RunningSum?
        /// Set when the run uses secure aggregation: updates then arrive masked, through its phases.
        public internal(set) var secure: SecureRound?

        init(number: Int, startedAt: Double, deadline: Double, selected: Set<String>, sum: RunningSum?) {
            self.number = number
            self.startedAt = startedAt
            self.deadline = deadline
            self.selected = selected
            self.sum = sum
        }

        public func hasReported(_ silo: String) -> Bool {
            if declined[silo] != nil { return true }
            if let secure { return secure.joined(silo) || secure.gone.contains(silo) }
            return contributions.contains { $0.silo == silo }
        }

        /// Plain rounds: every selected silo that did not decline has sent its update.
        var allIn: Bool { contributions.count + declined.count == selected.count }
    }

    public struct Contribution: Sendable, Equatable, Codable {
        public var silo: String
        public var examples: UInt64
        public var trainLoss: Double
        public var trainSeconds: Double
        /// Record mode: what the silo has spent on its own records so far in this run, by its own accounting.
        public var privacy: SiloPrivacy?

        public init(silo: String, examples: UInt64, trainLoss: Double, trainSeconds: Double, privacy: SiloPrivacy? = nil) {
            self.silo = silo
            self.examples = examples
            self.trainLoss = trainLoss
            self.trainSeconds = trainSeconds
            self.privacy = privacy
        }
    }

    /// What a round's release cost under the run's privacy mode, cumulatively over the run's rounds so far.
    public struct PrivacySpent: Sendable, Equatable, Codable {
        public let epsilon: Double
        public let delta: Double
        public let noiseMultiplier: Double

        public init(epsilon: Double, delta: Double, noiseMultiplier: Double) {
            self.epsilon = epsilon
            self.delta = delta
            self.noiseMultiplier = noiseMultiplier
        }
    }

    /// How a secure round ended: how many silos' inputs were unmasked into the sum and how many of the
    /// selected silos dropped out along the way.
    public struct SecureSummary: Sendable, Equatable, Codable {
        public let unmasked: Int
        public let dropped: Int
        public let threshold: Int

        public init(unmasked: Int, dropped: Int, threshold: Int) {
            self.unmasked = unmasked
            self.dropped = dropped
            self.threshold = threshold
        }
    }

    /// A closed round awaiting persistence: the weights it produced and who contributed.
    public struct ClosedRound: Sendable {
        public let number: Int
        public let contributions: [Contribution]
        public let selected: Set<String>
        public let newWeights: [Float]
        public let serverOptimizer: ServerOptimizer
        public let startedAt: Double
        public let closedAt: Double
        public let secure: SecureSummary?
        public let privacy: PrivacySpent?
        /// The clip norm this round used, and (adaptive clipping) the one the next round will use.
        public let clipNorm: Double?
        public let nextClipNorm: Double?
        /// What the round released of each contributor's data: the privacy ledger charges these on commit.
        public let releases: [PrivacyRelease]

        public init(number: Int, contributions: [Contribution], selected: Set<String>, newWeights: [Float],
                    serverOptimizer: ServerOptimizer, startedAt: Double, closedAt: Double, secure: SecureSummary?,
                    privacy: PrivacySpent?, clipNorm: Double?, nextClipNorm: Double?, releases: [PrivacyRelease] = []) {
            self.releases = releases
            self.number = number
            self.contributions = contributions
            self.selected = selected
            self.newWeights = newWeights
            self.serverOptimizer = serverOptimizer
            self.startedAt = startedAt
            self.closedAt = closedAt
            self.secure = secure
            self.privacy = privacy
            self.clipNorm = clipNorm
            self.nextClipNorm = nextClipNorm
        }

        public var examples: UInt64 { contributions.reduce(0) { $0 + $1.examples } }
        /// Example-weighted mean of the silos' training losses.
        public var trainLoss: Double {
            let n = Double(examples)
            return n == 0 ? .nan : contributions.reduce(0) { $0 + $1.trainLoss * Double($1.examples) } / n
        }
    }

    public enum WorkDecision: Sendable {
        case train(round: Int, weights: [Float], secondsLeft: Double, secure: SecureTask?)
        case wait(reason: String)
        case finished
    }

    public enum Event: Sendable {
        case none
        /// The round closed; persist `ClosedRound` then call `roundCommitted()`.
        case roundClosed(ClosedRound)
        /// Too few silos reported by the deadline; the round will be retried with the same number.
        case roundAbandoned(round: Int, reason: String)
        /// A secure-aggregation phase closed: deliver each silo its reply.
        case secureAdvanced(round: Int, replies: [String: SecureRound.Reply])

        public var isNone: Bool { if case .none = self { return true } else { return false } }
    }

    public init(runID: String, spec: RunSpec, globalWeights: [Float], completedRounds: Int = 0,
                serverOptimizer: ServerOptimizer? = nil, allowedSilos: Set<String>? = nil,
                livenessSeconds: Double = 15, noiseShares: [(members: Int, shares: Int)] = [], clipNorm: Double? = nil,
                discardedReleases: Int = 0) {
        self.discardedReleases = discardedReleases
        precondition(globalWeights.count == spec.model.parameterCount, "weights do not fit the run's model")
        self.noiseShares = noiseShares
        self.clipNorm = clipNorm ?? spec.secureAggregation?.clipNorm
        self.runID = runID
        self.spec = spec
        self.globalWeights = globalWeights
        self.completedRounds = completedRounds
        self.serverOptimizer = serverOptimizer
            ?? ServerOptimizer(config: spec.server, parameterCount: spec.model.parameterCount)
        self.allowedSilos = allowedSilos
        self.livenessSeconds = livenessSeconds
        self.state = completedRounds >= spec.rounds ? .finished : .waitingForSilos
    }

    /// Refuses silos that are not members or whose data cannot train this run's model.
    public func admit(_ silo: SiloInfo) throws(FederationError) {
        if let allowed = allowedSilos, !allowed.contains(silo.id) {
            throw FederationError(.permissionDenied, "silo '\(silo.id)' is not a member of this federation")
        }
        guard !silo.id.isEmpty else { throw FederationError(.invalidArgument, "silo id is empty") }
        let model = spec.model
        guard silo.features == model.inputFeatures else {
            throw FederationError(.failedPrecondition,
                "silo '\(silo.id)' has \(silo.features) features per example; run '\(runID)' trains \(model.summary), which expects \(model.inputFeatures)")
        }
        guard silo.classes <= model.classCount else {
            throw FederationError(.failedPrecondition,
                "silo '\(silo.id)' has labels in \(silo.classes) classes; run '\(runID)' predicts \(model.classCount)")
        }
        guard silo.examples > 0 else {
            throw FederationError(.failedPrecondition, "silo '\(silo.id)' has no training examples")
        }
        if spec.secureAggregation != nil {
            guard silo.identityKey.count == 32 else {
                throw FederationError(.failedPrecondition,
                    "silo '\(silo.id)' sent no identity key; run '\(runID)' uses secure aggregation, which needs one (upgrade the agent)")
            }
            if let earlier = known[silo.id]?.identityKey, !earlier.isEmpty, earlier != silo.identityKey {
                throw FederationError(.permissionDenied,
                    "silo '\(silo.id)' presented a different identity key than earlier in this run; refusing it")
            }
        }
    }

    /// A silo whose budget cannot afford the next round: left out of every later round of this run.
    public mutating func leaveOut(_ silo: String, reason: String) {
        unaffordable[silo] = reason
    }

    /// A silo whose budget was amended (or registered) may be priced again.
    public mutating func readmit(_ silo: String) {
        unaffordable[silo] = nil
        allLeftOutSince = nil
    }

    /// True when every live silo is left out for its budget and either enough of them are here to have made a
    /// round or they have been alone for a liveness window (every connected silo had its chance to poll): no
    /// round of this run can be afforded by the silos that are here (the run ends `budget-exhausted`).
    public mutating func budgetExhausted(now: Double) -> Bool {
        guard case .waitingForSilos = state, !unaffordable.isEmpty else { return false }
        let live = liveSilos(now: now)
        guard live.allSatisfy({ unaffordable[$0] != nil }) else {
            allLeftOutSince = nil
            return false
        }
        let since = allLeftOutSince ?? now
        allLeftOutSince = since
        return live.count >= (spec.silosPerRound ?? spec.minSilos) || now - since >= livenessSeconds
    }

    /// A silo that may no longer take part (its identity was revoked): no longer live, so never selected again.
    public mutating func forget(_ silo: String) {
        lastSeen[silo] = nil
    }

    /// Silos seen within the liveness window that have described themselves (polled) to this process.
    public func liveSilos(now: Double) -> [String] {
        lastSeen.filter { now - $0.value <= livenessSeconds && known[$0.key] != nil }.keys.sorted()
    }

    public mutating func requestWork(from silo: SiloInfo, now: Double) throws(FederationError) -> WorkDecision {
        try admit(silo)
        lastSeen[silo.id] = now
        known[silo.id] = silo
        switch state {
        case .finished:
            return .finished
        case .committing(let closed):
            return .wait(reason: "round \(closed.number) is being saved")
        case .collecting(let round):
            return decision(for: silo.id, in: round, now: now)
        case .waitingForSilos:
            // With a sample size set, wait until there are enough live silos to draw it from.
            let live = liveSilos(now: now).filter { !sittingOut.contains($0) && unaffordable[$0] == nil }
            let needed = spec.silosPerRound ?? spec.minSilos
            guard live.count >= needed else {
                let leftOut = liveSilos(now: now).filter { unaffordable[$0] != nil }
                if !leftOut.isEmpty {
                    return .wait(reason: "waiting for silos: \(live.count) of \(needed) connected whose privacy budget affords round \(completedRounds + 1) (left out: \(leftOut.map { "\($0): \(unaffordable[$0]!)" }.joined(separator: "; ")))")
                }
                if !sittingOut.isEmpty {
                    return .wait(reason: "waiting for silos: \(live.count) of \(needed) connected that have not already masked an input into round \(completedRounds + 1) (\(sittingOut.sorted().joined(separator: ", ")) sit it out; a silo's update is masked into at most one sum)")
                }
                return .wait(reason: "waiting for silos: \(live.count) of \(needed) connected")
            }
            let round: OpenRound
            do { round = try openRound(live: live, now: now) } catch {
                return .wait(reason: "cannot open round \(completedRounds + 1): \(error.message)")
            }
            state = .collecting(round)
            return decision(for: silo.id, in: round, now: now)
        }
    }

    private func decision(for silo: String, in round: OpenRound, now: Double) -> WorkDecision {
        if round.selected.contains(silo), !round.hasReported(silo) {
            return .train(round: round.number, weights: globalWeights, secondsLeft: max(0, round.deadline - now),
                          secure: round.secure?.tasks[silo])
        }
        return .wait(reason: "round \(round.number) is in progress")
    }

    private func openRound(live: [String], now: Double) throws(FederationError) -> OpenRound {
        let number = completedRounds + 1
        var chosen = live
        if let k = spec.silosPerRound, k < live.count {
            var rng = SeededGenerator(seed: spec.seed &* 0x9E37_79B9 &+ UInt64(number))
            chosen.shuffle(using: &rng)
            chosen = Array(chosen.prefix(k))
        }
        let deadline = now + spec.roundDeadlineSeconds
        var round = OpenRound(number: number, startedAt: now, deadline: deadline, selected: Set(chosen),
                              sum: spec.secureAggregation == nil ? RunningSum(parameterCount: spec.model.parameterCount) : nil)
        if let config = spec.secureAggregation {
            round.secure = try SecureRound(tasks: secureTasks(config, members: chosen.sorted(), round: number),
                                           minimum: spec.minSilos, phaseTimeout: config.phaseTimeoutSeconds,
                                           advertisingDeadline: deadline)
        }
        return round
    }

    /// Takes one silo's update (local weights minus the global weights of the task).
    public mutating func submit(from silo: SiloInfo, runID: String, round: Int, update: [Float], trainLoss: Double,
                                trainSeconds: Double, privacy: SiloPrivacy? = nil, now: Double) throws(FederationError) -> Event {
        try admit(silo)
        try checkPrivacyReport(privacy, from: silo.id)
        guard runID == self.runID else {
            throw FederationError(.failedPrecondition, "update is for run '\(runID)', the active run is '\(self.runID)'")
        }
        guard case .collecting(var open) = state, open.number == round else {
            throw FederationError(.failedPrecondition, "round \(round) of run '\(runID)' is not open (\(stateSummary))")
        }
        guard open.selected.contains(silo.id) else {
            throw FederationError(.failedPrecondition, "silo '\(silo.id)' was not selected for round \(round)")
        }
        guard open.sum != nil else {
            throw FederationError(.failedPrecondition,
                "run '\(runID)' uses secure aggregation: updates must be masked and sent with SecureAggregate")
        }
        guard !open.contributions.contains(where: { $0.silo == silo.id }) else {
            throw FederationError(.alreadyExists, "silo '\(silo.id)' already sent its update for round \(round)")
        }
        state = .waitingForSilos  // drop the state's reference so the sum is updated in place, not copied
        do { try open.sum!.add(update, examples: silo.examples, silo: silo.id) } catch {
            state = .collecting(open)
            throw error
        }
        lastSeen[silo.id] = now
        open.contributions.append(Contribution(silo: silo.id, examples: silo.examples, trainLoss: trainLoss,
                                               trainSeconds: trainSeconds, privacy: privacy))
        state = .collecting(open)
        if open.allIn {
            return close(open, delta: open.sum!.mean(), contributions: open.contributions, secure: nil, now: now)
        }
        return .none
    }

    /// A selected silo's agent will not take part in this round (its own policy, or it already sent a masked
    /// input for it): it is left out, and the round closes without waiting for it. Nothing else about the silo
    /// changes; a decline from a silo that already reported, or for a round that is not open, is refused.
    public mutating func decline(from silo: SiloInfo, runID: String, round: Int, reason: DeclineReason,
                                 now: Double) throws(FederationError) -> Event {
        try admit(silo)
        return try applyDecline(silo.id, runID: runID, round: round, reason: reason, now: now)
    }

    /// The decline itself, for a silo already admitted (or replayed from a secure attempt's log).
    public mutating func applyDecline(_ silo: String, runID: String, round: Int, reason: DeclineReason,
                                      now: Double) throws(FederationError) -> Event {
        guard runID == self.runID, case .collecting(var open) = state, open.number == round else {
            throw FederationError(.failedPrecondition, "round \(round) of run '\(runID)' is not open (\(stateSummary))")
        }
        guard open.selected.contains(silo), !open.hasReported(silo) else {
            throw FederationError(.failedPrecondition,
                "silo '\(silo)' cannot decline round \(round): it was not selected or has already taken part")
        }
        lastSeen[silo] = now
        state = .waitingForSilos
        open.declined[silo] = reason
        if reason == .alreadyMasked { sittingOut.insert(silo) }
        if open.secure != nil {
            let step = open.secure!.decline(silo, now: now)
            return advance(open, step, now: now)
        }
        state = .collecting(open)
        if open.selected.count - open.declined.count < spec.minSilos {
            state = .waitingForSilos
            return .roundAbandoned(round: open.number,
                reason: "\(open.declined.count) of \(open.selected.count) selected silos declined; fewer than \(spec.minSilos) can take part")
        }
        if open.allIn, !open.contributions.isEmpty {
            return close(open, delta: open.sum!.mean(), contributions: open.contributions, secure: nil, now: now)
        }
        return .none
    }

    /// Advances the clock: closes or abandons a round whose deadline has passed.
    public mutating func tick(now: Double) -> Event {
        guard case .collecting(var open) = state else { return .none }
        if open.secure != nil {
            state = .waitingForSilos
            let step = open.secure!.tick(now: now)
            return advance(open, step, now: now)
        }
        guard now >= open.deadline, let sum = open.sum else { return .none }
        if open.contributions.count >= spec.minSilos {
            return close(open, delta: sum.mean(), contributions: open.contributions, secure: nil, now: now)
        }
        state = .waitingForSilos
        return .roundAbandoned(round: open.number,
            reason: "only \(open.contributions.count) of \(spec.minSilos) required silos reported before the deadline")
    }

    mutating func close(_ open: OpenRound, delta: [Float], contributions: [Contribution],
                        secure: SecureSummary?, nextClipNorm: Double? = nil, now: Double) -> Event {
        var weights = globalWeights
        var optimizer = serverOptimizer
        optimizer.apply(delta: delta, to: &weights)
        let privacy = privacySpent(open, contributions: contributions, secure: secure)
        let closed = ClosedRound(number: open.number, contributions: contributions, selected: open.selected,
                                 newWeights: weights, serverOptimizer: optimizer, startedAt: open.startedAt,
                                 closedAt: now, secure: secure, privacy: privacy, clipNorm: secure == nil ? nil : clipNorm,
                                 nextClipNorm: nextClipNorm,
                                 releases: releases(open, contributions: contributions, secure: secure))
        state = .committing(closed)
        return .roundClosed(closed)
    }

    /// The closed round is durable: adopt its weights and move on.
    public mutating func roundCommitted() {
        guard case .committing(let closed) = state else { return }
        globalWeights = closed.newWeights
        serverOptimizer = closed.serverOptimizer
        completedRounds = closed.number
        sittingOut = []
        if let next = closed.nextClipNorm { clipNorm = next }
        if spec.privacy?.mode == .distributed, let secure = closed.secure {
            noiseShares.append((secure.unmasked + secure.dropped, secure.unmasked))
        }
        state = completedRounds >= spec.rounds ? .finished : .waitingForSilos
    }

    /// Persisting failed or the coordinator is stopping: drop the round; it will run again.
    public mutating func abandonRound() -> Int? {
        switch state {
        case .collecting(let open):
            state = .waitingForSilos
            return open.number
        case .committing(let closed):
            state = .waitingForSilos
            return closed.number
        case .waitingForSilos, .finished:
            return nil
        }
    }

    /// The number of the round being collected, if one is open.
    public var openRoundNumber: Int? {
        if case .collecting(let open) = state { return open.number }
        return nil
    }

    /// The round being collected or committed, if any.
    public var roundInFlight: Int? {
        switch state {
        case .collecting(let open): open.number
        case .committing(let closed): closed.number
        case .waitingForSilos, .finished: nil
        }
    }

    public var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    public var stateSummary: String {
        switch state {
        case .waitingForSilos where !sittingOut.isEmpty:
            "waiting for silos before round \(completedRounds + 1) (\(sittingOut.sorted().joined(separator: ", ")) sit it out: they masked an input into an attempt of this round that did not commit)"
        case .waitingForSilos: "waiting for silos before round \(completedRounds + 1)"
        case .collecting(let r):
            if let secure = r.secure {
                "round \(r.number) open (secure aggregation, phase \(secure.phase)), \(r.selected.count) silos selected"
            } else {
                "round \(r.number) open, \(r.contributions.count)/\(r.selected.count) updates in"
            }
        case .committing(let r): "round \(r.number) being saved"
        case .finished: "run finished after \(completedRounds) rounds"
        }
    }
}
