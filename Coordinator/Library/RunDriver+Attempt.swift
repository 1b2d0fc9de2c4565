import ConclaveConfig
import ConclaveCrypto
import ConclaveLearning
import SwiftProtobuf
public import ConclaveFederation
import ConclaveSecAgg
import ConclaveStorage
import ConclaveWire
import ConclaveSupport
import ConclaveWireConversions
import Foundation
import Logging

/// Durable secure attempts: every accepted message is logged before the phase is answered, and a restarted
/// coordinator replays the log to resume the same attempt with the silos that reconnect (`SecureResume`),
/// so a crash does not make silos mask their update into a second sum.
extension RunDriver {
    var attemptsDirectory: String { (config.database as NSString).deletingLastPathComponent + "/attempts" }

    /// A secure attempt opened: its log starts with the round, the selection and every silo's task.
    func startAttemptLog(now: Double) {
        endAttemptLog(outcome: nil)
        guard durableAttempts, let m = machine, case .collecting(let open) = m.state, let secure = open.secure else { return }
        let header = Conclave_V1_AttemptHeader.with {
            $0.runID = m.runID
            $0.round = UInt32(open.number)
            $0.startedAt = open.startedAt
            $0.deadline = open.deadline
            $0.selected = open.selected.sorted()
            $0.tasks = secure.tasks.mapValues(\.proto)
        }
        do {
            attemptLog = try SecureAttemptLog(path: SecureAttemptLog.path(directory: attemptsDirectory, runID: m.runID, round: open.number),
                                              header: header)
        } catch {
            attemptLog = nil
            logger.error("cannot log the secure attempt; a crash would lose it", metadata: ["error": "\(error)"])
        }
    }

    func logAttempt(_ entries: [Conclave_V1_AttemptLogEntry], masked: [UInt32]? = nil) {
        guard let log = attemptLog else { return }
        do {
            for (i, entry) in entries.enumerated() { try log.append(entry, sync: masked == nil || i < entries.count - 1) }
            if let masked { try log.appendMasked(masked) }
        } catch {
            logger.error("cannot log a secure-aggregation message; a crash now would lose it", metadata: ["error": "\(error)"])
        }
    }

    /// The attempt ended (committed or abandoned): its log is no longer needed.
    func endAttemptLog(outcome: String?) {
        if let log = attemptLog {
            if let outcome {
                logger.info("secure attempt log closed", metadata: ["outcome": "\(outcome)", "bytes_written": "\(log.bytesWritten)"])
            }
            log.remove()
        }
        attemptLog = nil
    }

    /// At activation: rebuilds the open secure attempt of the run's next round from its log, if there is one.
    /// Returns true when an attempt was resumed.
    func restoreAttempt() -> Bool {
        guard let m = machine else { return false }
        let round = m.completedRounds + 1
        let path = SecureAttemptLog.path(directory: attemptsDirectory, runID: m.runID, round: round)
        let records = SecureAttemptLog.read(path: path)
        var entries = [Conclave_V1_AttemptLogEntry]()
        var maskedWords = [[UInt32]]()  // the raw vectors, in order; each follows its header entry
        var maskedIndex = [Int: Int]()  // entry index → vector index
        for record in records {
            switch record {
            case .entry(let e): entries.append(e)
            case .masked(let words):
                maskedIndex[entries.count - 1] = maskedWords.count
                maskedWords.append(words)
            }
        }
        // The attempt's row stayed open at start-up because its log could resume it.
        attemptID = try? store.openAttemptID(run: m.runID, round: round)
        func giveUp(_ why: String) -> Bool {
            unlink(path)
            if attemptID != nil { attemptEnded("abandoned", round: round, reason: why) }
            return false
        }
        guard let first = entries.first, case .header(let h)? = first.kind, h.runID == m.runID, Int(h.round) == round else {
            return giveUp("the coordinator stopped without finishing it (crash); its log could not resume it")
        }
        do {
            let tasks = try h.tasks.mapValues { p throws(FederationError) in
                try SecureTask(proto: p, parameterCount: m.spec.model.parameterCount)
            }
            try machine!.restoreSecureAttempt(round: round, startedAt: h.startedAt, deadline: h.deadline,
                                              selected: h.selected, tasks: tasks)
        } catch {
            logger.warning("secure attempt log does not fit the run; the round starts over", metadata: ["error": "\(error)"])
            return giveUp("the coordinator stopped without finishing it (crash); its log did not fit the run")
        }
        var finished = false
        for (index, entry) in entries.enumerated().dropFirst() where !finished {
            let now = WallClock.now()
            var event = RoundStateMachine.Event.none
            switch entry.kind {
            case .message(let message):
                var decoded: SecureRound.Message?
                if case .maskedHeader(let header) = message.kind {
                    // A header whose words never reached the disk (a torn record) is left out.
                    guard let v = maskedIndex[index], UInt64(maskedWords[v].count) == header.totalValues else { continue }
                    decoded = .maskedInput(context: Array(header.context), maskedWords[v])
                } else {
                    decoded = replayed(message, from: entry.silo)
                }
                guard let decoded else { continue }
                event = (try? machine!.secure(decoded, from: entry.silo, runID: m.runID, round: round, now: now)) ?? .none
            case .left:
                event = machine!.secureLeft(entry.silo, runID: m.runID, round: round, now: now)
            case .declined:
                event = (try? machine!.applyDecline(entry.silo, runID: m.runID, round: round, reason: .alreadyMasked, now: now)) ?? .none
            case .deadline:
                event = machine!.closeSecurePhase(now: now)
            case .header, .none:
                continue
            }
            switch event {
            case .secureAdvanced:
                break
            case .roundClosed, .roundAbandoned:
                finished = true
                logger.notice("secure attempt replayed from its log: it had already ended",
                              metadata: ["run": "\(m.runID)", "round": "\(round)"])
                handle(event)
            case .none:
                break
            }
        }
        guard !finished else { unlink(path); return false }
        machine!.restartSecureClock(now: WallClock.now())
        attemptLog = try? SecureAttemptLog(path: path, header: nil)
        logger.notice("secure attempt resumed from its log", metadata: ["run": "\(m.runID)", "round": "\(round)",
                                                                        "messages": "\(entries.count - 1)"])
        return true
    }

    private func replayed(_ m: Conclave_V1_SecureClientMessage, from silo: String) -> SecureRound.Message? {
        switch m.kind {
        case .join(let join):
            let stats = RoundStateMachine.Contribution(silo: silo, examples: join.numExamples, trainLoss: join.trainLoss,
                                                       trainSeconds: join.trainSeconds,
                                                       privacy: join.hasPrivacy ? try? SiloPrivacy(proto: join.privacy) : nil)
            return .keys(KeyAdvertisement(proto: join.keys), stats)
        case .shares(let shares):
            return .shares(shares.shares.map(EncryptedShare.init(proto:)))
        case .survivorSignature(let s):
            return .survivorSignature(Array(s.signature))
        case .unmasking(let u):
            return try? .unmasking(UnmaskingResponse(silo: silo, proto: u))
        case .masked, .maskedHeader, .resume, .none:
            return nil
        }
    }

    /// A silo whose stream broke (the coordinator restarted) continues the open attempt: checked against the
    /// attempt's context and the silo's identity key; returns every phase reply it is owed and whether its
    /// message for the open phase is on record (then its answer is awaited as usual).
    public func secureResume(silo: String, runID: String, round: Int, context: [UInt8],
                             signature: [UInt8]) throws(FederationError) -> (replies: [SecureRound.Reply], answered: Bool) {
        guard !stopping else { throw FederationError(.unavailable, "the coordinator is shutting down; retry when it is back") }
        guard let m = machine, m.runID == runID, case .collecting(let open) = m.state, open.number == round,
              let secure = open.secure, let task = secure.tasks[silo], task.context == context else {
            throw FederationError(.failedPrecondition,
                "no open secure attempt of round \(round) of run '\(runID)' matches this resume (\(machine?.stateSummary ?? "no run is active"))")
        }
        guard let key = task.directory[silo],
              Ed25519.verify(signature: signature, message: SignedStatement.resume(context: context, silo: silo), publicKey: key) else {
            throw FederationError(.invalidArgument, "resume for silo '\(silo)' does not carry its identity key's signature")
        }
        guard secure.joined(silo), !secure.gone.contains(silo) else {
            throw FederationError(.failedPrecondition, "silo '\(silo)' is not in the open attempt of round \(round) (never joined, or left)")
        }
        let answered = secure.hasAnswered(silo)
        if answered { mailbox.expect(silo) }
        logger.info("silo resumed its secure attempt", metadata: ["silo": "\(silo)", "round": "\(round)", "answered": "\(answered)"])
        return (secure.repliesOwed[silo] ?? [], answered)
    }
}
