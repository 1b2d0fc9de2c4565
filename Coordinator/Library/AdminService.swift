import ConclaveSupport
import ConclaveWireConversions
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclaveStorage
public import ConclaveWire
public import GRPCCore
import SwiftProtobuf

/// The operator's side of the coordinator, used by the `conclave` CLI.
public struct AdminService: Conclave_V1_Admin.SimpleServiceProtocol {
    let driver: RunDriver

    public init(driver: RunDriver) { self.driver = driver }

    private func rpc<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as FederationError { throw e.rpcError } catch let e as StorageError {
            throw RPCError(code: .internalError, message: e.message)
        }
    }

    public func startRun(request: Conclave_V1_StartRunRequest, context: ServerContext) async throws -> Conclave_V1_RunInfo {
        try await rpc {
            let record = try await driver.startRun(specTOML: request.specToml,
                                                   source: request.specName.isEmpty ? "run spec" : request.specName)
            return try await info(record)
        }
    }

    public func resumeRun(request: Conclave_V1_ResumeRunRequest, context: ServerContext) async throws -> Conclave_V1_RunInfo {
        try await rpc {
            let runID = try WireCheck.name(request.runID, "run id")
            return try await info(try await driver.resumeRun(runID, fromRound: Int(request.fromRound)))
        }
    }

    public func getRun(request: Conclave_V1_GetRunRequest, context: ServerContext) async throws -> Conclave_V1_RunInfo {
        try await rpc {
            let store = driver.store
            if !request.runID.isEmpty { try WireCheck.name(request.runID, "run id") }
            let record = request.runID.isEmpty ? try store.runs().last : try store.run(id: request.runID)
            guard let record else {
                throw FederationError(.notFound, request.runID.isEmpty ? "no runs yet" : "no run '\(request.runID)'")
            }
            return try await info(record)
        }
    }

    public func listRuns(request: Conclave_V1_ListRunsRequest, context: ServerContext) async throws -> Conclave_V1_ListRunsReply {
        try await rpc {
            var reply = Conclave_V1_ListRunsReply()
            for record in try driver.store.runs() {
                var i = try await info(record)
                i.rounds = []
                reply.runs.append(i)
            }
            return reply
        }
    }

    public func exportModel(request: Conclave_V1_ExportModelRequest, response: RPCWriter<Conclave_V1_ModelChunk>,
                            context: ServerContext) async throws {
        let model = try await rpc {
            try await driver.exportModel(runID: try WireCheck.name(request.runID, "run id"),
                                         round: request.round == 0 ? nil : Int(request.round))
        }
        var header = Conclave_V1_ModelHeader()
        header.runID = request.runID
        header.round = UInt32(model.round)
        header.model = model.spec.model.proto
        header.totalValues = UInt64(model.weights.count)
        header.weightsSha256 = SHA256.hex(floats: model.weights)
        try await response.write(.with { $0.header = header })
        for offset in WeightsCodec.offsets(count: model.weights.count) {
            try await response.write(.with { $0.weights = WeightsCodec.chunk(model.weights, offset: offset) })
        }
    }

    private func info(_ r: CoordinatorStore.RunRecord) async throws -> Conclave_V1_RunInfo {
        var i = Conclave_V1_RunInfo()
        i.runID = r.id
        i.name = r.name
        i.status = r.status
        i.roundsPlanned = UInt32(r.roundsPlanned)
        i.roundsCompleted = UInt32(r.completedRounds)
        i.model = r.spec.model.proto
        i.training = r.spec.training.proto
        i.createdAt = r.createdAt
        i.minSilos = UInt32(r.spec.minSilos)
        i.message = r.status == "running" ? await driver.status : r.message
        i.privacy = r.spec.privacySummary
        i.rounds = try driver.store.rounds(run: r.id).map { round in
            var ri = Conclave_V1_RoundInfo()
            ri.round = UInt32(round.round)
            ri.status = "completed"
            ri.silos = round.silos
            ri.numExamples = UInt64(round.examples)
            ri.testAccuracy = round.testAccuracy ?? .nan
            ri.testLoss = round.testLoss ?? .nan
            ri.trainLoss = round.trainLoss ?? .nan
            ri.seconds = round.finishedAt - round.startedAt
            ri.checkpointSha256 = round.checkpointSHA256
            ri.finishedAt = round.finishedAt
            ri.epsilon = round.epsilon ?? .nan
            ri.delta = round.delta ?? .nan
            ri.siloEpsilon = round.siloEpsilon
            ri.clipNorm = round.clipNorm ?? 0
            if let unmasked = round.unmasked {
                ri.secure = true
                ri.unmasked = UInt32(unmasked)
                ri.dropped = UInt32(round.dropped ?? 0)
            }
            return ri
        }
        i.abandoned = try driver.store.attempts(run: r.id).filter { $0.outcome == "abandoned" }.map { a in
            .with {
                $0.round = UInt32(a.round)
                $0.status = "abandoned"
                $0.finishedAt = a.at
                $0.reason = a.reason
                $0.testAccuracy = .nan
                $0.testLoss = .nan
                $0.trainLoss = .nan
                $0.epsilon = .nan
                $0.delta = .nan
            }
        }
        return i
    }
}
