import ConclaveSupport
import ConclaveWireConversions
import ConclaveFederation
import ConclaveSecAgg
public import ConclaveWire
public import GRPCCore
import Logging
import SwiftProtobuf

/// The coordinator's end of `SecureAggregate`: turns each phase's wire message into a `SecureRound`
/// message, waits (in `RunDriver`) for the phase to close, and writes back what the silo needs next.
/// A stream speaks for a silo only once its join verified: a message that fails verification changes nothing
/// about the silo it names. Masked inputs take an upload permit only after their header checked out, and are
/// dropped as soon as they are in the running sum, so coordinator memory stays a small multiple of the model.
extension FederationService {
    public func secureAggregate(request: RPCAsyncSequence<Conclave_V1_SecureClientMessage, any Error>,
                                response: RPCWriter<Conclave_V1_SecureServerMessage>,
                                context: ServerContext) async throws {
        let stream = SecureStreamBox()
        do {
            stream.certified = try certifiedSilo(context)
            try await withIdleTimeout(idleTimeout, what: "secure-aggregation stream") { activity in
                try await serveSecure(request, response: response, stream: stream, activity: activity)
            }
        } catch {
            await end(stream)
            refused(error, silo: stream.claimedSilo, what: "secure-aggregation message")
            throw error
        }
        await end(stream)
    }

    private func serveSecure(_ request: RPCAsyncSequence<Conclave_V1_SecureClientMessage, any Error>,
                             response: RPCWriter<Conclave_V1_SecureServerMessage>, stream: SecureStreamBox,
                             activity: Activity) async throws {
        for try await message in request {
            activity.pause()
            switch try await stream.take(message, service: self) {
            case .incomplete:
                activity.touch()
                continue
            case .resumed(let state, let answered):
                try await response.write(.with { $0.resumeState = state })
                guard answered else { activity.touch(); continue }
            case .submitted:
                break
            }
            switch await driver.secureAnswer(for: stream.session!.silo) {
            case .reply(let reply):
                try await response.write(reply.proto)
                activity.touch()
            case .interrupted(let text):
                throw RPCError(code: .unavailable, message: text)
            case .result(let completed, let text, let unmasked, let dropped):
                try await response.write(.with {
                    $0.result = .with {
                        $0.completed = completed
                        $0.message = text
                        $0.unmasked = UInt32(unmasked)
                        $0.dropped = UInt32(dropped)
                    }
                })
                stream.finished = true
                return
            }
        }
    }

    /// The stream ended (closed, failed or timed out): its permit and its silo's stream slot are released, and
    /// a silo whose verified join it carried is not waited for again this round.
    private func end(_ stream: SecureStreamBox) async {
        if stream.holdsUpload {
            stream.holdsUpload = false
            await uploads.release()
        }
        if let claimed = stream.claimedSilo { streams.release(claimed) }
        if let session = stream.session, !stream.finished {
            await driver.secureLeft(session.silo, runID: session.runID, round: session.round)
        }
    }
}

/// One silo's stream: who it is (once its join verified) and its masked input while it arrives in chunks.
/// A class so the idle watchdog's cancellation and the handler's cleanup see the same state.
final class SecureStreamBox: @unchecked Sendable {
    struct Session { let silo: String, runID: String, round: Int }
    /// Set only after the driver accepted the join: from then on this stream speaks for the silo.
    private(set) var session: Session?
    /// The silo whose one stream slot this stream holds (claimed once its join verified).
    private(set) var claimedSilo: String?
    var holdsUpload = false
    var finished = false
    /// The silo the connection's certificate names (mutual TLS); the stream may speak only for it.
    var certified: String?
    private var masked: VectorAssembler<UInt32>?
    private var maskedContext: [UInt8] = []

    enum Taken {
        /// A whole protocol message went to the driver: its answer is pending.
        case submitted
        /// A masked input is still arriving.
        case incomplete
        /// The stream continues an attempt after a restart: what to tell the silo, and whether its message for
        /// the open phase is on record (then its answer is pending).
        case resumed(Conclave_V1_ResumeState, answered: Bool)
    }

    /// Applies one wire message.
    func take(_ message: Conclave_V1_SecureClientMessage, service: FederationService) async throws -> Taken {
        let driver = service.driver
        if case .resume(let r) = message.kind {
            guard session == nil, claimedSilo == nil else { throw FederationError(.invalidArgument, "secure stream sent a resume after its join") }
            let silo = try WireCheck.name(r.siloID, "silo id of a resume")
            try service.checkSpeaker(silo, certified: certified)
            let runID = try WireCheck.name(r.runID, "run id of the resume from silo '\(silo)'")
            let (replies, answered) = try await driver.secureResume(silo: silo, runID: runID, round: Int(r.round),
                                                                    context: Array(r.context), signature: Array(r.signature))
            session = Session(silo: silo, runID: runID, round: Int(r.round))
            try service.streams.claim(silo, what: "secure-aggregation")
            claimedSilo = silo
            return .resumed(.with { $0.replies = replies.map(\.proto); $0.answered = answered }, answered: answered)
        }
        if case .join(let join) = message.kind {
            guard session == nil, claimedSilo == nil else { throw FederationError(.invalidArgument, "secure stream sent two joins") }
            let silo = try SiloInfo(proto: join.silo)
            try service.checkSpeaker(silo.id, certified: certified)
            let runID = try WireCheck.name(join.runID, "run id of the join from silo '\(silo.id)'")
            guard join.keys.siloID == silo.id else {
                throw FederationError(.invalidArgument,
                    "join from silo '\(silo.id)' carries keys labelled \(WireCheck.preview(join.keys.siloID))")
            }
            let stats = RoundStateMachine.Contribution(
                silo: silo.id,
                examples: UInt64(try WireCheck.count(join.numExamples, "num_examples of silo '\(silo.id)'", max: WireCheck.maxExamples)),
                trainLoss: try WireCheck.finite(join.trainLoss, "train_loss of silo '\(silo.id)'", in: 0...1e30),
                trainSeconds: try WireCheck.finite(join.trainSeconds, "train_seconds of silo '\(silo.id)'", in: 0...1e9),
                privacy: join.hasPrivacy ? try SiloPrivacy(proto: join.privacy) : nil)
            let keys = try KeyAdvertisement(checking: join.keys)
            // Verified first (signature, selection, phase): a forged join neither changes the silo's round nor
            // takes its one stream slot. Only then does this stream speak for the silo.
            try await driver.secureSubmit(.keys(keys, stats), from: silo.id, runID: runID, round: Int(join.round))
            session = Session(silo: silo.id, runID: runID, round: Int(join.round))
            try service.streams.claim(silo.id, what: "secure-aggregation")
            claimedSilo = silo.id
            return .submitted
        }
        guard let s = session else { throw FederationError(.invalidArgument, "secure stream must start with a join") }
        let next: SecureRound.Message
        switch message.kind {
        case .join, .resume: throw FederationError(.invalidArgument, "secure stream sent two joins")
        case .shares(let shares):
            next = .shares(try shares.shares.map { p throws(FederationError) in try EncryptedShare(checking: p) })
        case .maskedHeader(let header):
            guard masked == nil else { throw FederationError(.invalidArgument, "masked input from '\(s.silo)' has two headers") }
            let expected = try await driver.expectedMaskedLength(runID: s.runID, round: s.round)
            masked = try VectorAssembler(total: header.totalValues, expected: expected,
                                         what: "masked input from silo '\(s.silo)' for round \(s.round)")
            maskedContext = Array(header.context)
            await service.uploads.acquire()
            holdsUpload = true
            return .incomplete
        case .masked(let chunk):
            guard masked != nil else {
                throw FederationError(.invalidArgument, "masked input from '\(s.silo)' must start with its header")
            }
            try masked!.add(chunk)
            guard masked!.isComplete else { return .incomplete }
            let vector = try masked!.finish()
            masked = nil
            driver.metrics.received(values: vector.count)
            try await driver.secureSubmit(.maskedInput(context: maskedContext, vector), from: s.silo,
                                          runID: s.runID, round: s.round)
            holdsUpload = false
            await service.uploads.release()
            return .submitted
        case .survivorSignature(let signature):
            next = .survivorSignature(Array(signature.signature))
        case .unmasking(let shares):
            next = .unmasking(try UnmaskingResponse(silo: s.silo, proto: shares))
        case .none:
            throw FederationError(.invalidArgument, "secure stream from '\(s.silo)' holds an empty message")
        }
        try await driver.secureSubmit(next, from: s.silo, runID: s.runID, round: s.round)
        return .submitted
    }
}
