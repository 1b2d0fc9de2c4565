public import ConclaveCrypto
public import ConclaveFederation
public import ConclaveWire
public import GRPCCore
import ConclaveSecAgg
import ConclaveSupport
import ConclaveWireConversions
import Foundation
import SwiftProtobuf

/// The silo's end of `SecureAggregate`: sends its join, then answers each phase's relay with the next
/// message from its `SecureSiloSession`, until the coordinator says how the round ended.
public enum SecureExchange {
    /// Where a test makes the silo vanish: right after sending that phase's message, it closes its side of
    /// the stream (what a crash looks like to the coordinator) and ignores everything after.
    public enum DropPoint: String, Sendable, CaseIterable {
        case afterKeys, afterShares, afterMaskedInput, afterSignature
    }

    public struct Outcome: Sendable, Equatable {
        public var completed: Bool
        public var message: String
        public var unmasked: Int
        public var dropped: Int

        init(completed: Bool, message: String, unmasked: Int, dropped: Int) {
            self.completed = completed
            self.message = message
            self.unmasked = unmasked
            self.dropped = dropped
        }

        /// The silo left the attempt itself.
        init(completed: Bool, unmaskedWord message: String) {
            self.init(completed: completed, message: message, unmasked: 0, dropped: 0)
        }
    }

    /// Runs the protocol; returns nil only when `dropAfter` made the silo leave. When the stream breaks after the
    /// join (the coordinator restarted) and `identity` is given, it resumes the same attempt on a new stream
    /// (for up to `resumeSeconds`): the coordinator replays the phase replies it owes, the silo replays them on
    /// a copy of its session as it was at the join, and re-sends its message for the open phase — never a
    /// masked input.
    public static func run<Transport: ClientTransport>(
        _ federation: Conclave_V1_Federation.Client<Transport>, silo: Conclave_V1_SiloDescription, runID: String,
        round: Int, session: SecureSiloSession, stats: RoundStateMachine.Contribution, dropAfter: DropPoint? = nil,
        journal: MaskedInputJournal? = nil, minSurvivors: Int = 1, identity: Ed25519KeyPair? = nil,
        resumeSeconds: Double = 60, interrupted: @Sendable (RPCError) -> Void = { _ in }
    ) async throws -> Outcome? {
        let atJoin = session
        var current = session
        guard case .keys(let ad, _) = current.start(stats) else { fatalError("a session starts with its keys") }
        var opening: Conclave_V1_SecureClientMessage = .with {
            $0.join = .with {
                $0.silo = silo
                $0.runID = runID
                $0.round = UInt32(round)
                $0.keys = ad.proto
                $0.numExamples = stats.examples
                $0.trainLoss = stats.trainLoss
                $0.trainSeconds = stats.trainSeconds
                if let privacy = stats.privacy { $0.privacy = privacy.proto }
            }
        }
        let box = SessionBox(current)
        let deadline = ContinuousClock.now + .seconds(resumeSeconds)
        var wait = Duration.milliseconds(200)
        while true {
            do {
                return try await stream(federation, opening: opening, box: box, atJoin: atJoin, stats: stats,
                                        runID: runID, round: round, dropAfter: opening.join.runID.isEmpty ? nil : dropAfter,
                                        journal: journal, minSurvivors: minSurvivors)
            } catch let error as RPCError where box.joined && identity != nil && isTransient(error) && ContinuousClock.now < deadline {
                // The coordinator went away mid-round: continue the same attempt once it is back.
                interrupted(error)
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(2))
                let context = atJoin.task.context
                opening = .with {
                    $0.resume = .with {
                        $0.siloID = silo.siloID
                        $0.runID = runID
                        $0.round = UInt32(round)
                        $0.context = Data(context)
                        $0.signature = Data(identity!.sign(SignedStatement.resume(context: context, silo: silo.siloID)))
                    }
                }
            }
        }
    }

    static func isTransient(_ error: RPCError) -> Bool {
        [.unavailable, .unknown, .cancelled, .internalError, .deadlineExceeded].contains(error.code)
    }

    /// The session as the exchange advances, shared across the streams of one attempt.
    final class SessionBox: @unchecked Sendable {
        var session: SecureSiloSession
        /// Whether the join went out (the coordinator may hold it, so a broken stream is worth resuming).
        var joined = false
        init(_ session: SecureSiloSession) { self.session = session }
    }

    private static func stream<Transport: ClientTransport>(
        _ federation: Conclave_V1_Federation.Client<Transport>, opening: Conclave_V1_SecureClientMessage, box: SessionBox,
        atJoin: SecureSiloSession, stats: RoundStateMachine.Contribution, runID: String, round: Int,
        dropAfter: DropPoint?, journal: MaskedInputJournal?, minSurvivors: Int
    ) async throws -> Outcome? {
        let (outbound, sender) = AsyncStream<[Conclave_V1_SecureClientMessage]>.makeStream()
        sender.yield([opening])
        box.joined = true
        let request = StreamingClientRequest<Conclave_V1_SecureClientMessage> { writer in
            for await batch in outbound {
                for message in batch { try await writer.write(message) }
            }
        }
        /// The next message for a relayed reply, checked against the silo's policy; a masked input is journaled
        /// (durably) before it may leave.
        @Sendable func respond(_ reply: SecureRound.Reply, send: Bool) throws -> SecureRound.Message {
            if case .survivors(let list) = reply, list.count < minSurvivors {
                throw FederationError(.failedPrecondition,
                    "policy.min_silos_in_aggregate: only \(list.count) silos survived, this silo requires \(minSurvivors); it sends no unmasking shares")
            }
            let next = try box.session.respond(to: reply)
            if send, case .maskedInput(let context, let vector) = next {
                try journal?.record(run: runID, round: round, context: context, input: vector)
            }
            return next
        }
        return try await federation.secureAggregate(request: request) { response in
            var dropped = false
            defer { sender.finish() }
            if dropAfter == .afterKeys {
                sender.finish()
                dropped = true
            }
            for try await message in response.messages {
                if dropped { continue }
                let reply: SecureRound.Reply
                let point: DropPoint?
                switch message.kind {
                case .resumeState(let state):
                    // Rebuild the session from the join: replay every reply owed, then send what the open phase
                    // still needs from this silo (never a masked input a second time).
                    box.session = atJoin
                    _ = box.session.start(stats)
                    var last: SecureRound.Message?
                    for r in state.replies {
                        guard let decoded = SecureRound.Reply(proto: r) else {
                            throw FederationError(.invalidArgument, "coordinator resumed with an unknown phase reply")
                        }
                        last = try respond(decoded, send: false)
                    }
                    guard !state.answered, let last else { continue }
                    if case .maskedInput(let context, let vector) = last {
                        // Only the very vector already sent to this very attempt may go again.
                        guard journal?.maySend(run: runID, round: round, context: context, input: vector) ?? true else {
                            return Outcome(completed: false, unmaskedWord: "the resumed attempt asks for a masked input other than the one this silo sent; it is never masked into a second sum, so the silo leaves the attempt")
                        }
                        try journal?.record(run: runID, round: round, context: context, input: vector)
                    }
                    sender.yield(wire(last))
                    continue
                case .keys(let list):
                    reply = .keys(list.advertisements.map(KeyAdvertisement.init(proto:)))
                    point = .afterShares
                case .shares(let bundle):
                    reply = .shares(bundle.shares.map(EncryptedShare.init(proto:)))
                    point = .afterMaskedInput
                case .survivors(let list):
                    reply = .survivors(list.siloIds)
                    point = .afterSignature
                case .signatures(let signatures):
                    reply = .signatures(signatures.signatures.mapValues { Array($0) })
                    point = nil
                case .result(let r):
                    return Outcome(completed: r.completed, message: r.message, unmasked: Int(r.unmasked), dropped: Int(r.dropped))
                case .none:
                    throw FederationError(.invalidArgument, "coordinator sent an empty secure-aggregation message")
                }
                sender.yield(wire(try respond(reply, send: true)))
                if let point, dropAfter == point {
                    sender.finish()
                    dropped = true
                }
            }
            if dropped { return nil }
            throw FederationError(.failedPrecondition, "coordinator ended the secure-aggregation stream without a result")
        }
    }

    /// One protocol message as wire messages (a masked input is a header and 1 MiB chunks).
    static func wire(_ message: SecureRound.Message) -> [Conclave_V1_SecureClientMessage] {
        switch message {
        case .keys: fatalError("keys travel in the join")
        case .shares(let shares):
            return [.with { $0.shares = .with { $0.shares = shares.map(\.proto) } }]
        case .maskedInput(let context, let vector):
            var out: [Conclave_V1_SecureClientMessage] = [.with {
                $0.maskedHeader = .with {
                    $0.context = Data(context)
                    $0.totalValues = UInt64(vector.count)
                }
            }]
            for offset in WeightsCodec.offsets(count: vector.count) {
                out.append(.with { $0.masked = WeightsCodec.chunk(vector, offset: offset) })
            }
            return out
        case .survivorSignature(let signature):
            return [.with { $0.survivorSignature = .with { $0.signature = Data(signature) } }]
        case .unmasking(let response):
            return [.with { $0.unmasking = response.proto }]
        }
    }
}
