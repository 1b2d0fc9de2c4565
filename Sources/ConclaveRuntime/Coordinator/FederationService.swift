import ConclaveCrypto
import ConclaveFederation
public import ConclaveWire
public import GRPCCore
import SwiftProtobuf
public import Logging

/// The agents' side of the coordinator: hands out tasks and takes updates. Wire format only; the
/// decisions are `RunDriver`'s.
public struct FederationService: Conclave_V1_Federation.SimpleServiceProtocol {
    let driver: RunDriver
    let uploads: UploadGate
    let logger: Logger

    public init(driver: RunDriver, logger: Logger, concurrentUploads: Int = 2) {
        self.driver = driver
        self.uploads = UploadGate(permits: concurrentUploads)
        self.logger = logger
    }

    public func fetchTask(request: Conclave_V1_FetchTaskRequest, response: RPCWriter<Conclave_V1_TaskChunk>,
                          context: ServerContext) async throws {
        let silo = SiloInfo(proto: request.silo)
        let work: RunDriver.Work
        do { work = try await driver.requestWork(from: silo) } catch {
            logger.warning("silo refused", metadata: ["silo": "\(silo.id)", "error": "\(error.message)"])
            throw error.rpcError
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
            if let secure = task.secure { train.secure = secure.proto }
            if let record = task.spec.privacy?.recordProto(plannedRounds: task.spec.rounds) { train.recordPrivacy = record }
            header.train = train
            try await response.write(.with { $0.header = header })
            for offset in WeightsCodec.offsets(count: task.weights.count) {
                try await response.write(.with { $0.weights = WeightsCodec.chunk(task.weights, offset: offset) })
            }
        }
    }

    public func submitUpdate(request: RPCAsyncSequence<Conclave_V1_UpdateChunk, any Error>,
                             context: ServerContext) async throws -> Conclave_V1_SubmitReply {
        // At most a few updates are assembled at once: coordinator memory stays a small multiple of the model.
        try await uploads.withPermit {
            var header: Conclave_V1_UpdateHeader?
            var assembler: WeightsAssembler?
            do {
                for try await chunk in request {
                    switch chunk.kind {
                    case .header(let h):
                        guard header == nil else { throw FederationError(.invalidArgument, "update stream has two headers") }
                        let expected = try await driver.expectedParameterCount(runID: h.runID, round: Int(h.round))
                        assembler = try WeightsAssembler(total: h.totalValues, expected: expected,
                                                         what: "update from silo '\(h.silo.siloID)' for round \(h.round)")
                        header = h
                    case .weights(let w):
                        guard assembler != nil else {
                            throw FederationError(.invalidArgument, "update stream must start with its header")
                        }
                        try assembler!.add(w)
                    case .none:
                        throw FederationError(.invalidArgument, "update stream holds an empty message")
                    }
                }
                guard let header, let assembler else {
                    throw FederationError(.invalidArgument, "update stream ended without a header")
                }
                let update = try assembler.finish()
                var silo = SiloInfo(proto: header.silo)
                silo.examples = header.numExamples
                try await driver.submit(from: silo, runID: header.runID, round: Int(header.round), update: update,
                                        trainLoss: header.trainLoss, trainSeconds: header.trainSeconds,
                                        privacy: header.hasPrivacy ? SiloPrivacy(proto: header.privacy) : nil)
                return .with { $0.accepted = true; $0.message = "update counted in round \(header.round)" }
            } catch let error as FederationError {
                logger.warning("update refused", metadata: ["silo": "\(header?.silo.siloID ?? "?")", "error": "\(error.message)"])
                throw error.rpcError
            }
        }
    }
}

/// A counting semaphore for async code.
actor UploadGate {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(permits: Int) { available = permits }

    func withPermit<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    /// For holds that do not fit one closure (a masked input arriving message by message).
    func acquire() async {
        if available > 0 {
            available -= 1
        } else {
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    func release() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() }
    }
}
