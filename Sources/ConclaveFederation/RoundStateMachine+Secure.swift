import ConclaveCrypto
import ConclaveLearning
import ConclaveSecAgg

/// The secure-aggregation side of the round state machine: each open round of a run with secure aggregation
/// drives a `SecureRound`; these turn its steps into the machine's events.
extension RoundStateMachine {
    /// Each selected silo's view of a secure round: one fresh context and graph, its own FedAvg weight.
    func secureTasks(_ config: SecureAggregationConfig, members: [String], round: Int)
        throws(FederationError) -> [String: SecureTask] {
        let choice = try config.graph(for: members.count)
        let context = Array("\(runID)/round-\(round)/attempt-\(SecureRandom.bytes(8).hexString)".utf8)
        let graphSeed = SecureRandom.bytes(32)
        let directory = Dictionary(uniqueKeysWithValues: members.map { ($0, known[$0]?.identityKey ?? []) })
        let total = Double(members.reduce(UInt64(0)) { $0 + (known[$1]?.examples ?? 0) })
        // Central DP counts every silo equally (DP-FedAvg's uniform weighting): each clipped input then has norm
        // ≤ C, the noise σC covers any one silo, and the mean's noise falls as 1/n. Weights by example count would
        // make one silo's influence w·C with w up to 1, charging the noise for C while the signal is scaled by w.
        let uniform = spec.privacy?.mode == .central || spec.privacy?.mode == .distributed
        let distributed = spec.privacy.flatMap { p in
            p.mode == .distributed
                ? p.distributedMechanism(members: members.count, clipNorm: config.clipNorm, dimension: spec.model.parameterCount,
                                         dropoutRate: config.dropoutRate, rotationSeed: SecureRandom.bytes(32))
                : nil
        }
        var tasks = [String: SecureTask]()
        for silo in members {
            tasks[silo] = SecureTask(context: context, threshold: choice.threshold, prg: config.prg, members: members,
                                     degree: choice.complete ? nil : choice.degree, graphSeed: graphSeed,
                                     directory: directory, clipNorm: clipNorm ?? config.clipNorm,
                                     weight: uniform ? 1 : Double(known[silo]?.examples ?? 0) / total,
                                     precisionBits: config.precisionBits, parameterCount: spec.model.parameterCount,
                                     distributed: distributed, clipBit: spec.privacy?.adaptiveClipping != nil)
        }
        return tasks
    }

    /// Takes one secure-aggregation message from a silo in the open round.
    public mutating func secure(_ message: SecureRound.Message, from silo: String, runID: String, round: Int,
                                now: Double) throws(FederationError) -> Event {
        guard runID == self.runID, case .collecting(var open) = state, open.number == round, open.secure != nil else {
            throw FederationError(.failedPrecondition,
                "secure round \(round) of run '\(runID)' is not open (\(stateSummary))")
        }
        if case .keys(_, let stats) = message { try checkPrivacyReport(stats.privacy, from: silo) }
        lastSeen[silo] = now
        state = .waitingForSilos  // drop the state's reference so the masked sum is updated in place, not copied
        let step: SecureRound.Step
        do { step = try open.secure!.receive(message, from: silo, now: now) } catch {
            state = .collecting(open)
            throw error
        }
        return advance(open, step, now: now)
    }

    /// Reopens a secure attempt from its durable log after a restart: the same round, the same tasks (context,
    /// keys directory, graph); the caller then replays the attempt's accepted messages into it.
    public mutating func restoreSecureAttempt(round: Int, startedAt: Double, deadline: Double, selected: [String],
                                              tasks: [String: SecureTask]) throws(FederationError) {
        guard case .waitingForSilos = state, round == completedRounds + 1, let config = spec.secureAggregation else {
            throw FederationError(.failedPrecondition, "attempt log for round \(round) does not fit the run (\(stateSummary))")
        }
        guard Set(tasks.keys) == Set(selected) else {
            throw FederationError(.invalidArgument, "attempt log for round \(round) lists tasks for other silos than it selected")
        }
        var open = OpenRound(number: round, startedAt: startedAt, deadline: deadline, selected: Set(selected), sum: nil)
        open.secure = try SecureRound(tasks: tasks, minimum: spec.minSilos, phaseTimeout: config.phaseTimeoutSeconds,
                                      advertisingDeadline: deadline)
        state = .collecting(open)
    }

    /// Replay of a phase that closed at its deadline before a restart: closes the open phase now.
    public mutating func closeSecurePhase(now: Double) -> Event {
        guard case .collecting(var open) = state, let secure = open.secure else { return .none }
        state = .waitingForSilos
        let step = open.secure!.tick(now: max(now, secure.phaseDeadline))
        return advance(open, step, now: now)
    }

    /// After a replay: each phase of the restored attempt gets a fresh deadline for the silos to reconnect in.
    public mutating func restartSecureClock(now: Double) {
        guard case .collecting(var open) = state, open.secure != nil else { return }
        state = .waitingForSilos
        open.secure!.restartPhaseClock(now: now)
        state = .collecting(open)
    }

    /// A silo's secure-aggregation connection ended before the round did.
    public mutating func secureLeft(_ silo: String, runID: String, round: Int, now: Double) -> Event {
        guard runID == self.runID, case .collecting(var open) = state, open.number == round, open.secure != nil else {
            return .none
        }
        state = .waitingForSilos
        let step = open.secure!.leave(silo, now: now)
        return advance(open, step, now: now)
    }

    /// The silo's identity was revoked: never selected again, and not waited for in the secure round in
    /// flight (dropped if it joined, as if it had declined if not).
    public mutating func revoke(_ silo: String, now: Double) -> Event {
        forget(silo)
        guard case .collecting(var open) = state, open.secure?.tasks[silo] != nil else { return .none }
        state = .waitingForSilos
        let step = open.secure!.joined(silo) ? open.secure!.leave(silo, now: now) : open.secure!.decline(silo, now: now)
        return advance(open, step, now: now)
    }

    mutating func advance(_ open: OpenRound, _ step: SecureRound.Step, now: Double) -> Event {
        state = .collecting(open)
        guard let secure = open.secure else { return .none }
        switch step {
        case .pending:
            return .none
        case .advanced(let replies):
            return .secureAdvanced(round: open.number, replies: replies)
        case .aborted(let reason):
            state = .waitingForSilos
            return .roundAbandoned(round: open.number, reason: "secure aggregation: \(reason)")
        case .finished(let sum, let survivors):
            do throws(FederationError) {
                // Central DP: N(0, (z_Δ·C)²) on the sum; each silo's weighted, clipped input has norm ≤ C.
                var rng = ChaChaDRBG()
                let result = try secure.mean(of: sum, survivors: survivors, central: centralMechanism(members: open.selected.count), using: &rng)
                var nextClip: Double?
                if let adaptive = spec.privacy?.adaptiveClipping, let count = result.count {
                    nextClip = adaptive.next(clipNorm: clipNorm ?? spec.secureAggregation?.clipNorm ?? 0, noisyFraction: count / Double(survivors.count))
                }
                let summary = SecureSummary(unmasked: survivors.count, dropped: open.selected.count - survivors.count,
                                            threshold: secure.threshold)
                return close(open, delta: result.mean, contributions: survivors.compactMap { secure.stats[$0] },
                             secure: summary, nextClipNorm: nextClip, now: now)
            } catch {
                state = .waitingForSilos
                return .roundAbandoned(round: open.number, reason: "secure aggregation: \(error.message)")
            }
        }
    }

    /// Central DP's mechanism for a round of `members` silos at the clip norm in force (nil without central DP).
    public func centralMechanism(members: Int) -> CentralMechanism? {
        spec.privacy.flatMap { CentralMechanism(privacy: $0, clipNorm: clipNorm ?? spec.secureAggregation?.clipNorm ?? 1,
                                                dimension: spec.model.parameterCount, members: members) }
    }
}
