import ConclaveSupport
import ConclaveWireConversions
public import ConclaveFederation
import ConclaveConfig
import Logging
import SwiftProtobuf
import ConclaveWire

/// Where each secure-aggregation answer goes. The protocol's state (who is expected, who answered, who is
/// gone) is `SecureRound`'s alone; this only parks each silo's handler until its phase closes.
struct SecureMailbox {
    /// Silos whose message was taken and who have not collected the answer yet.
    private var awaiting: Set<String> = []
    private var ready: [String: RunDriver.SecureOutcome] = [:]
    private var waiters: [String: CheckedContinuation<RunDriver.SecureOutcome, Never>] = [:]

    mutating func expect(_ silo: String) {
        ready[silo] = nil
        awaiting.insert(silo)
    }

    mutating func deliver(_ outcome: RunDriver.SecureOutcome, to silo: String) {
        guard awaiting.remove(silo) != nil else { return }
        if let waiter = waiters.removeValue(forKey: silo) { waiter.resume(returning: outcome) } else { ready[silo] = outcome }
    }

    /// A phase closed: each silo that goes on gets its reply; those still waiting were left out.
    mutating func phaseClosed(replies: [String: SecureRound.Reply], round: Int) {
        for (silo, reply) in replies { deliver(.reply(reply), to: silo) }
        for silo in awaiting { deliver(.failed("left out of round \(round): the phase closed without this silo"), to: silo) }
    }

    mutating func resolveAll(_ outcome: RunDriver.SecureOutcome) {
        for silo in awaiting { deliver(outcome, to: silo) }
    }

    mutating func takeReady(_ silo: String) -> RunDriver.SecureOutcome? { ready.removeValue(forKey: silo) }

    func isAwaiting(_ silo: String) -> Bool { awaiting.contains(silo) }

    mutating func park(_ silo: String, _ continuation: CheckedContinuation<RunDriver.SecureOutcome, Never>) {
        waiters.removeValue(forKey: silo)?.resume(returning: .failed("superseded by a newer connection"))
        waiters[silo] = continuation
    }
}

extension RunDriver {
    /// Takes one secure-aggregation message (a masked input goes straight into the running sum, in place, so
    /// the caller can drop its copy at once); the answer comes from `secureAnswer(for:)`. A message that fails
    /// verification throws and changes nothing.
    public func secureSubmit(_ message: SecureRound.Message, from silo: String, runID: String,
                             round: Int) throws(FederationError) {
        if let allowed = config.allowedSilos, !allowed.contains(silo) {
            throw FederationError(.permissionDenied, "silo '\(silo)' is not a member of this federation")
        }
        guard !stopping else { throw FederationError(.unavailable, "the coordinator is shutting down; retry when it is back") }
        guard machine != nil else {
            throw FederationError(.failedPrecondition, "secure round \(round) of run '\(runID)' is not open (no run is active)")
        }
        let event = try machine!.secure(message, from: silo, runID: runID, round: round, now: WallClock.now())
        // Durable before the phase is answered (a masked input's words straight from its vector).
        if case .maskedInput(_, let vector) = message {
            logAttempt(AttemptLogCodec.entries(for: message, from: silo), masked: vector)
        } else {
            logAttempt(AttemptLogCodec.entries(for: message, from: silo))
        }
        if case .maskedInput = message { CrashHook.reach("masked-input") }
        if case .unmasking = message { CrashHook.reach("unmasking-share") }
        mailbox.expect(silo)
        handle(event)
    }

    /// Suspends until the phase the silo's last message answered closes.
    public func secureAnswer(for silo: String) async -> SecureOutcome {
        if let ready = mailbox.takeReady(silo) { return ready }
        guard !stopping else { return .interrupted("the coordinator is shutting down") }
        guard mailbox.isAwaiting(silo) else { return .failed("no secure-aggregation message from '\(silo)' is pending") }
        return await withCheckedContinuation { mailbox.park(silo, $0) }
    }

    /// The stream of a silo whose join was accepted ended: it is not waited for again this round. Only the
    /// handler that carried the silo's verified join may call this, so a forged stream cannot drop a silo.
    public func secureLeft(_ silo: String, runID: String, round: Int) {
        guard machine != nil, !stopping else { return }
        let event = machine!.secureLeft(silo, runID: runID, round: round, now: WallClock.now())
        logAttempt([.with { $0.silo = silo; $0.left = true }])
        logger.info("silo left the secure round", metadata: ["silo": "\(silo)", "round": "\(round)"])
        handle(event)
    }

    /// The silo's identity was revoked: it is never selected again, and a secure round in flight counts it as
    /// dropped now rather than at the phase timeout.
    public func siloRevoked(_ silo: String) {
        guard machine != nil, !stopping else { return }
        var joined = false
        if case .collecting(let open)? = machine?.state, let secure = open.secure { joined = secure.joined(silo) }
        let event = machine!.revoke(silo, now: WallClock.now())
        // Replayed after a crash as the same step: a drop if it had joined, a decline if not.
        logAttempt([.with { $0.silo = silo; if joined { $0.left = true } else { $0.declined = true } }])
        logger.info("revoked silo is no longer selected", metadata: ["silo": "\(silo)"])
        handle(event)
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
}
