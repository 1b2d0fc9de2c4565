import ConclaveIdentity
import ConclaveSupport
import ConclaveWireConversions
import ConclaveCrypto
import ConclaveFederation
public import ConclaveWire
public import GRPCCore
import SwiftProtobuf
public import Logging

/// The agents' side of the coordinator: hands out tasks and takes updates. Wire format only; the
/// decisions are `RunDriver`'s. Every value is checked as it is decoded, before the driver sees it.
public struct FederationService: Conclave_V1_Federation.SimpleServiceProtocol {
    let driver: RunDriver
    let uploads: UploadGate
    let streams = SiloStreams()
    /// Longest a stream may stay silent while the coordinator waits for its next message.
    let idleTimeout: Duration
    let logger: Logger
    /// With mutual TLS every request speaks for the silo its certificate names, and only for it.
    let mutualTLS: Bool

    public init(driver: RunDriver, logger: Logger, concurrentUploads: Int = 2, idleTimeout: Duration = .seconds(30),
                mutualTLS: Bool = false) {
        self.driver = driver
        self.mutualTLS = mutualTLS
        self.uploads = UploadGate(permits: concurrentUploads)
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    public func fetchTask(request: Conclave_V1_FetchTaskRequest, response: RPCWriter<Conclave_V1_TaskChunk>,
                          context: ServerContext) async throws {
        let work: RunDriver.Work
        do {
            let silo = try SiloInfo(proto: request.silo)
            try checkSpeaker(silo.id, certified: certifiedSilo(context))
            work = try await driver.requestWork(from: silo)
        } catch {
            refused(error, silo: request.silo.siloID, what: "task request")
            throw error
        }
        var header = Conclave_V1_TaskHeader()
        switch work {
        case .wait(let reason):
            var wait = Conclave_V1_Wait()
            wait.retryAfterMs = 250
            wait.reason = reason
            header.wait = wait
            try await response.write(.with { $0.header = header })
        case .train(let task):
            var train = Conclave_V1_TrainTask()
            train.runID = task.runID
            train.round = UInt32(task.round)
            train.model = task.spec.model.proto
            train.training = task.spec.training.proto
            train.totalValues = UInt64(task.weights.count)
            train.weightsSha256 = SHA256.hex(floats: task.weights)
            train.deadlineSeconds = task.secondsLeft
            train.privacyMode = task.spec.privacy?.mode.rawValue ?? "none"
            if let secure = task.secure { train.secure = secure.proto }
            if let record = task.spec.privacy?.recordProto(plannedRounds: task.spec.rounds) { train.recordPrivacy = record }
            if let p = task.spec.privacy, p.mode != .record {
                train.noiseMultiplier = p.noiseMultiplier ?? 0
                train.privacyDelta = p.delta
                train.countNoiseStddev = task.countNoiseStddev ?? 0
            }
            header.train = train
            try await response.write(.with { $0.header = header })
            for offset in WeightsCodec.offsets(count: task.weights.count) {
                try await response.write(.with { $0.weights = WeightsCodec.chunk(task.weights, offset: offset) })
            }
        }
    }

    public func submitUpdate(request: RPCAsyncSequence<Conclave_V1_UpdateChunk, any Error>,
                             context: ServerContext) async throws -> Conclave_V1_SubmitReply {
        do {
            let certified = try certifiedSilo(context)
            return try await withIdleTimeout(idleTimeout, what: "update stream") { activity in
                try await receiveUpdate(request, certified: certified, activity: activity)
            }
        } catch {
            refused(error, silo: nil, what: "update")
            throw error
        }
    }

    /// Header first, checked in full (who, which round, how big) before the stream may take an upload permit
    /// or its silo's one stream; then the chunks, then the driver.
    private func receiveUpdate(_ request: RPCAsyncSequence<Conclave_V1_UpdateChunk, any Error>, certified: String?,
                               activity: Activity) async throws -> Conclave_V1_SubmitReply {
        var chunks = request.makeAsyncIterator()
        guard let first = try await chunks.next() else {
            throw FederationError(.invalidArgument, "update stream ended without a header")
        }
        activity.touch()
        guard case .header(let h) = first.kind else {
            throw FederationError(.invalidArgument, "update stream must start with its header")
        }
        var silo = try SiloInfo(proto: h.silo)
        try checkSpeaker(silo.id, certified: certified)
        let runID = try WireCheck.name(h.runID, "run id of the update from silo '\(silo.id)'")
        silo.examples = UInt64(try WireCheck.count(h.numExamples, "num_examples of the update from silo '\(silo.id)'",
                                                   max: WireCheck.maxExamples))
        let loss = try WireCheck.finite(h.trainLoss, "train_loss of silo '\(silo.id)'", in: 0...1e30)
        let seconds = try WireCheck.finite(h.trainSeconds, "train_seconds of silo '\(silo.id)'", in: 0...1e9)
        let privacy = h.hasPrivacy ? try SiloPrivacy(proto: h.privacy) : nil
        let round = Int(h.round)
        let expected = try await driver.expectedParameterCount(runID: runID, round: round, silo: silo.id)
        var assembler = try WeightsAssembler(total: h.totalValues, expected: expected,
                                             what: "update from silo '\(silo.id)' for round \(round)")
        try streams.claim(silo.id, what: "update")
        activity.pause()
        await uploads.acquire()
        activity.touch()
        do {
            while !assembler.isComplete, let chunk = try await chunks.next() {
                activity.touch()
                guard case .weights(let w) = chunk.kind else {
                    throw FederationError(.invalidArgument, "update stream from silo '\(silo.id)' sent a second header or an empty message")
                }
                try assembler.add(w)
            }
            let update = try assembler.finish()
            driver.metrics.received(values: update.count)
            guard update.allSatisfy(\.isFinite) else {
                throw FederationError(.invalidArgument, "update from silo '\(silo.id)' holds non-finite values (NaN or infinity)")
            }
            activity.pause()
            try await driver.submit(from: silo, runID: runID, round: round, update: update, trainLoss: loss,
                                    trainSeconds: seconds, privacy: privacy)
        } catch {
            await uploads.release()
            streams.release(silo.id)
            throw error
        }
        await uploads.release()
        streams.release(silo.id)
        return .with { $0.accepted = true; $0.message = "update counted in round \(round)" }
    }

    public func declineTask(request: Conclave_V1_DeclineTaskRequest,
                            context: ServerContext) async throws -> Conclave_V1_DeclineTaskReply {
        do {
            let silo = try SiloInfo(proto: request.silo)
            try checkSpeaker(silo.id, certified: certifiedSilo(context))
            let runID = try WireCheck.name(request.runID, "run id of the decline from silo '\(silo.id)'")
            let detail = try WireCheck.text(request.detail, "detail of the decline from silo '\(silo.id)'")
            guard let reason = DeclineReason(proto: request.reason) else {
                throw FederationError(.invalidArgument, "decline from silo '\(silo.id)' gives no known reason")
            }
            let message = try await driver.decline(from: silo, runID: runID, round: Int(request.round),
                                                   reason: reason, detail: detail, signature: Array(request.signature))
            return .with { $0.message = message }
        } catch {
            refused(error, silo: request.silo.siloID, what: "decline")
            throw error
        }
    }

    /// One log line per refusal, with the silo id (as sent, escaped and cut short) and the reason.
    /// The silo id the caller's certificate names (nil in plaintext mode, where anyone may claim any id).
    func certifiedSilo(_ context: ServerContext) throws(FederationError) -> String? {
        guard mutualTLS else { return nil }
        guard let peer = context.peerIdentity, peer.role == .silo else {
            throw FederationError(.permissionDenied, "only silos call the Federation service")
        }
        return peer.name
    }

    /// A silo speaks only for itself.
    func checkSpeaker(_ silo: String, certified: String?) throws(FederationError) {
        guard mutualTLS else { return }
        guard let certified, certified == silo else {
            throw FederationError(.permissionDenied,
                "this connection's certificate is silo '\(certified ?? "?")'; it cannot speak for silo \(WireCheck.preview(silo))")
        }
    }

    func refused(_ error: any Error, silo: String?, what: String) {
        var meta: Logger.Metadata = ["error": "\(error)"]
        if let silo { meta["silo"] = "\(WireCheck.preview(silo))" }
        if let e = error as? FederationError { meta["code"] = "\(e.code.rawValue)"; meta["error"] = "\(e.message)" }
        driver.metrics.refused((error as? FederationError)?.code.rawValue ?? (error as? RPCError).map { "\($0.code)" } ?? "stream-error")
        logger.warning("\(what) refused", metadata: meta)
    }
}
