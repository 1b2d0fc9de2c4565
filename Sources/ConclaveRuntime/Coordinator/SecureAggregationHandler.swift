import ConclaveFederation
import ConclaveSecAgg
public import ConclaveWire
public import GRPCCore
import Logging
import SwiftProtobuf

/// The coordinator's end of `SecureAggregate`: turns each phase's wire message into a `SecureRound`
/// message, waits (in `RunDriver`) for the phase to close, and writes back what the silo needs next.
/// Masked inputs share the upload gate with plain updates: at most a few are being assembled at once, and each
/// is dropped as soon as it is in the running sum, so coordinator memory stays a small multiple of the model.
extension FederationService {
    public func secureAggregate(request: RPCAsyncSequence<Conclave_V1_SecureClientMessage, any Error>,
                                response: RPCWriter<Conclave_V1_SecureServerMessage>,
                                context: ServerContext) async throws {
        var stream = SecureStream()
        do {
            for try await message in request {
                guard try await stream.take(message, driver: driver, uploads: uploads) else { continue }
                switch await driver.secureAnswer(for: stream.session!.silo) {
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
            await stream.releaseUpload(uploads)
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
        await stream.releaseUpload(uploads)
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
    private var holdsUpload = false

    /// Applies one wire message; returns true once a whole protocol message went to the driver (its answer is
    /// then pending), false while a masked input is still arriving.
    mutating func take(_ message: Conclave_V1_SecureClientMessage, driver: RunDriver,
                       uploads: UploadGate) async throws(FederationError) -> Bool {
        if case .join(let join) = message.kind {
            guard session == nil else { throw FederationError(.invalidArgument, "secure stream sent two joins") }
            guard join.keys.siloID == join.silo.siloID else {
                throw FederationError(.invalidArgument,
                    "join from silo '\(join.silo.siloID)' carries keys labelled '\(join.keys.siloID)'")
            }
            let s = Session(silo: join.silo.siloID, runID: join.runID, round: Int(join.round))
            session = s
            let stats = RoundStateMachine.Contribution(silo: s.silo, examples: join.numExamples,
                                                       trainLoss: join.trainLoss, trainSeconds: join.trainSeconds,
                                                       privacy: join.hasPrivacy ? SiloPrivacy(proto: join.privacy) : nil)
            try await driver.secureSubmit(.keys(KeyAdvertisement(proto: join.keys), stats), from: s.silo,
                                          runID: s.runID, round: s.round)
            return true
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
            await uploads.acquire()
            holdsUpload = true
            return false
        case .masked(let chunk):
            guard masked != nil else {
                throw FederationError(.invalidArgument, "masked input from '\(s.silo)' must start with its header")
            }
            try masked!.add(chunk)
            guard masked!.isComplete else { return false }
            let vector = try masked!.finish()
            masked = nil
            try await driver.secureSubmit(.maskedInput(context: maskedContext, vector), from: s.silo,
                                          runID: s.runID, round: s.round)
            await releaseUpload(uploads)
            return true
        case .survivorSignature(let signature):
            next = .survivorSignature(Array(signature.signature))
        case .unmasking(let shares):
            next = .unmasking(try UnmaskingResponse(silo: s.silo, proto: shares))
        case .none:
            throw FederationError(.invalidArgument, "secure stream from '\(s.silo)' holds an empty message")
        }
        try await driver.secureSubmit(next, from: s.silo, runID: s.runID, round: s.round)
        return true
    }

    mutating func releaseUpload(_ uploads: UploadGate) async {
        guard holdsUpload else { return }
        holdsUpload = false
        masked = nil
        await uploads.release()
    }
}
