import ConclaveFederation
import ConclaveSecAgg
public import ConclaveWire
public import GRPCCore
import Logging
import SwiftProtobuf

/// The coordinator's end of `SecureAggregate`: turns each phase's wire message into a `SecureRound`
/// message, waits (in `RunDriver`) for the phase to close, and writes back what the silo needs next.
extension FederationService {
    public func secureAggregate(request: RPCAsyncSequence<Conclave_V1_SecureClientMessage, any Error>,
                                response: RPCWriter<Conclave_V1_SecureServerMessage>,
                                context: ServerContext) async throws {
        var stream = SecureStream()
        do {
            for try await message in request {
                guard let outcome = try await stream.take(message, driver: driver) else { continue }
                switch outcome {
                case .reply(let reply):
                    try await response.write(reply.proto)
                case .result(let completed, let text, let unmasked, let dropped):
                    try await response.write(.with {
                        $0.result = .with {
                            $0.completed = completed
                            $0.message = text
                            $0.unmasked = UInt32(unmasked)
                            $0.dropped = UInt32(dropped)
                        }
                    })
                    return
                }
            }
        } catch {
            if let session = stream.session {
                await driver.secureLeft(session.silo, runID: session.runID, round: session.round)
            }
            if let error = error as? FederationError {
                logger.warning("secure aggregation message refused",
                               metadata: ["silo": "\(stream.session?.silo ?? "?")", "error": "\(error.message)"])
                throw error.rpcError
            }
            throw error
        }
        // The silo closed its stream before the round ended for it.
        if let session = stream.session {
            await driver.secureLeft(session.silo, runID: session.runID, round: session.round)
        }
    }
}

/// One silo's stream: who it is (from its join) and its masked input while it arrives in chunks.
struct SecureStream {
    struct Session { let silo: String, runID: String, round: Int }
    private(set) var session: Session?
    private var masked: VectorAssembler<UInt32>?
    private var maskedContext: [UInt8] = []

    /// Applies one wire message; returns nil while a masked input is still arriving.
    mutating func take(_ message: Conclave_V1_SecureClientMessage,
                       driver: RunDriver) async throws(FederationError) -> RunDriver.SecureOutcome? {
        if case .join(let join) = message.kind {
            guard session == nil else { throw FederationError(.invalidArgument, "secure stream sent two joins") }
            guard join.keys.siloID == join.silo.siloID else {
                throw FederationError(.invalidArgument,
                    "join from silo '\(join.silo.siloID)' carries keys labelled '\(join.keys.siloID)'")
            }
            let s = Session(silo: join.silo.siloID, runID: join.runID, round: Int(join.round))
            session = s
            let stats = RoundStateMachine.Contribution(silo: s.silo, examples: join.numExamples,
                                                       trainLoss: join.trainLoss, trainSeconds: join.trainSeconds)
            return try await driver.secure(.keys(KeyAdvertisement(proto: join.keys), stats), from: s.silo,
                                           runID: s.runID, round: s.round)
        }
        guard let s = session else { throw FederationError(.invalidArgument, "secure stream must start with a join") }
        let next: SecureRound.Message
        switch message.kind {
        case .join: fatalError("handled above")
        case .shares(let shares):
            next = .shares(shares.shares.map(EncryptedShare.init(proto:)))
        case .maskedHeader(let header):
            guard masked == nil else { throw FederationError(.invalidArgument, "masked input from '\(s.silo)' has two headers") }
            let expected = try await driver.expectedMaskedLength(runID: s.runID, round: s.round)
            masked = try VectorAssembler(total: header.totalValues, expected: expected,
                                         what: "masked input from silo '\(s.silo)' for round \(s.round)")
            maskedContext = Array(header.context)
            return nil
        case .masked(let chunk):
            guard masked != nil else {
                throw FederationError(.invalidArgument, "masked input from '\(s.silo)' must start with its header")
            }
            try masked!.add(chunk)
            guard masked!.isComplete else { return nil }
            next = .maskedInput(context: maskedContext, try masked!.finish())
            masked = nil
        case .survivorSignature(let signature):
            next = .survivorSignature(Array(signature.signature))
        case .unmasking(let shares):
            next = .unmasking(try UnmaskingResponse(silo: s.silo, proto: shares))
        case .none:
            throw FederationError(.invalidArgument, "secure stream from '\(s.silo)' holds an empty message")
        }
        return try await driver.secure(next, from: s.silo, runID: s.runID, round: s.round)
    }
}
