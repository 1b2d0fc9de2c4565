public import ConclaveFederation
public import ConclaveWire
public import GRPCCore
import ConclaveSecAgg
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
    }

    /// Runs the protocol; returns nil only when `dropAfter` made the silo leave.
    public static func run<Transport: ClientTransport>(
        _ federation: Conclave_V1_Federation.Client<Transport>, silo: Conclave_V1_SiloDescription, runID: String,
        round: Int, session: SecureSiloSession, stats: RoundStateMachine.Contribution, dropAfter: DropPoint? = nil,
        journal: MaskedInputJournal? = nil, minSurvivors: Int = 1
    ) async throws -> Outcome? {
        var session = session
        let (outbound, sender) = AsyncStream<[Conclave_V1_SecureClientMessage]>.makeStream()
        guard case .keys(let ad, _) = session.start(stats) else { fatalError("a session starts with its keys") }
        sender.yield([.with {
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
        }])
        let request = StreamingClientRequest<Conclave_V1_SecureClientMessage> { writer in
            for await batch in outbound {
                for message in batch { try await writer.write(message) }
            }
        }
        let first = session
        return try await federation.secureAggregate(request: request) { response in
            var session = first
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
                case .keys(let list):
                    reply = .keys(list.advertisements.map(KeyAdvertisement.init(proto:)))
                    point = .afterShares
                case .shares(let bundle):
                    reply = .shares(bundle.shares.map(EncryptedShare.init(proto:)))
                    point = .afterMaskedInput
                case .survivors(let list):
                    // The silo's own policy: its input is revealed only inside a sum of at least this many silos.
                    guard list.siloIds.count >= minSurvivors else {
                        throw FederationError(.failedPrecondition,
                            "policy.min_silos_in_aggregate: only \(list.siloIds.count) silos survived, this silo requires \(minSurvivors); it sends no unmasking shares")
                    }
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
                let next = try session.respond(to: reply)
                if case .maskedInput = next {
                    // Durable before it leaves: this silo's update is masked into at most one sum.
                    try journal?.record(run: runID, round: round)
                }
                sender.yield(wire(next))
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
