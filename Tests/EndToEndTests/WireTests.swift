import ConclaveConfig
import ConclaveCrypto
import ConclavePrivacy
import ConclaveSecAgg
import ConclaveFederation
import ConclaveAdminClient
import ConclaveAgent
import ConclaveCoordinator
import ConclaveSupport
import ConclaveWireConversions
import ConclaveStorage
import ConclaveTesting
import ConclaveWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import SwiftProtobuf
import Testing

/// Malformed messages against a real gRPC server (in-process): each is refused with a status naming the
/// problem, the database stays empty of rounds, and the server keeps answering.
@Suite struct WireTests {
    @Test func assemblerRefusesMalformedStreams() throws {
        func chunk(_ offset: UInt64, _ values: [Float]) -> Conclave_V1_WeightsChunk {
            .with { $0.offset = offset; $0.values = values.withUnsafeBytes { Data($0) } }
        }
        #expect(throws: FederationError.self) { try WeightsAssembler(total: 5, expected: 4, what: "u") }
        var a = try WeightsAssembler(total: 4, expected: 4, what: "u")
        #expect(throws: FederationError.self) { try a.add(chunk(2, [1, 2])) }
        #expect(throws: FederationError.self) { try a.add(.with { $0.offset = 0; $0.values = Data([1, 2, 3]) }) }
        try a.add(chunk(0, [1, 2]))
        #expect(throws: FederationError.self) { try a.finish() }
        #expect(throws: FederationError.self) { try a.add(chunk(2, [3, 4, 5])) }
        try a.add(chunk(2, [3, 4]))
        #expect(try a.finish() == [1, 2, 3, 4])
        // Round trip through the codec's chunking, across chunk boundaries.
        let big = (0..<(WeightsCodec.valuesPerChunk * 2 + 5)).map { Float($0) }
        var b = try WeightsAssembler(total: UInt64(big.count), expected: big.count, what: "big")
        for offset in WeightsCodec.offsets(count: big.count) { try b.add(WeightsCodec.chunk(big, offset: offset)) }
        #expect(try b.finish() == big)
    }

    @Test func malformedUpdatesAreRefusedOverGRPC() async throws {
        let spec = """
            rounds = 2
            min_silos = 1
            [model]
            architecture = "logreg"
            input_features = 2
            num_classes = 2
            [training]
            learning_rate = 0.1
            [secure_aggregation]
            enabled = false  # this test exercises the plain update path
            """
        try await InProcessCoordinator.with(spec: spec, logger: Logger(label: "wire-test")) { driver, runID, federation in
            let silo = Conclave_V1_SiloDescription.with {
                $0.siloID = "a"; $0.numExamples = 3; $0.numFeatures = 2; $0.numClasses = 2
            }
            // Open round 1 for silo "a".
            let first = try await federation.fetchTask(.with { $0.silo = silo }) { response in
                var kinds = [String]()
                for try await chunk in response.messages {
                    if case .header(let h) = chunk.kind, case .train = h.action { kinds.append("train") }
                }
                return kinds
            }
            #expect(first == ["train"])

            func submit(_ messages: [Conclave_V1_UpdateChunk]) async -> RPCError? {
                do {
                    _ = try await federation.submitUpdate(request: StreamingClientRequest { writer in
                        for m in messages { try await writer.write(m) }
                    })
                    return nil
                } catch let error as RPCError { return error } catch { return RPCError(code: .unknown, message: "\(error)") }
            }
            func header(round: UInt32 = 1, total: UInt64 = 6) -> Conclave_V1_UpdateChunk {
                .with { $0.header = .with { h in
                    h.silo = silo; h.runID = runID; h.round = round; h.totalValues = total; h.numExamples = 3
                } }
            }
            func values(_ offset: UInt64, _ v: [Float]) -> Conclave_V1_UpdateChunk {
                .with { $0.weights = .with { $0.offset = offset; $0.values = v.withUnsafeBytes { Data($0) } } }
            }
            let wrongSize = await submit([header(total: 7), values(0, [1, 2, 3, 4, 5, 6, 7])])
            #expect(wrongSize?.code == .invalidArgument)
            #expect(wrongSize?.message.contains("announces 7 values; the model has 6 parameters") == true)
            let noHeader = await submit([values(0, [1, 2, 3, 4, 5, 6])])
            #expect(noHeader?.message.contains("must start with its header") == true)
            let short = await submit([header(), values(0, [1, 2, 3])])
            #expect(short?.message.contains("ended after 3 of 6 values") == true)
            let closed = await submit([header(round: 9), values(0, [1, 2, 3, 4, 5, 6])])
            #expect(closed?.code == .failedPrecondition)
            #expect(closed?.message.contains("round 9") == true)
            let nan = await submit([header(), values(0, [1, 2, .nan, 4, 5, 6])])
            #expect(nan?.message.contains("non-finite") == true)
            #expect(try driver.store.rounds(run: runID).isEmpty, "refused updates must not close a round")
            // The server is still up, and a good update closes round 1.
            #expect(await submit([header(), values(0, [1, 2, 3, 4, 5, 6])]) == nil)
            #expect(try driver.store.rounds(run: runID).map(\.round) == [1])
            let replay = await submit([header(), values(0, [1, 2, 3, 4, 5, 6])])
            #expect(replay?.code == .failedPrecondition)
        }
    }
}

/// The privacy parameters a task carries survive the wire, and nonsense from a coordinator is refused.
@Suite struct PrivacyWireTests {
    @Test func distributedNoiseAndRecordPrivacyRoundTrip() throws {
        let mechanism = DistributedDiscreteGaussian(clipNorm: 2, localStddev: 0.3, silos: 10, dimension: 650,
                                                    rotationSeed: [UInt8](repeating: 3, count: 32))
        let keys = (0..<3).map { _ in Ed25519KeyPair().publicKey }
        let task = SecureTask(context: [1, 2], threshold: 2, prg: .aes, members: ["a", "b", "c"], degree: nil,
                              graphSeed: [UInt8](repeating: 0, count: 32),
                              directory: ["a": keys[0], "b": keys[1], "c": keys[2]], clipNorm: 2, weight: 1,
                              parameterCount: 650, distributed: mechanism)
        let back = try SecureTask(proto: task.proto, parameterCount: 650)
        #expect(back == task)
        #expect(try back.parameters().length == 1024)
        var bad = task.proto
        bad.distributed.rotationSeed = Data([1, 2, 3])
        #expect(throws: FederationError.self) { try SecureTask(proto: bad, parameterCount: 650) }
        bad = task.proto
        bad.distributed.localStddev = -1
        #expect(throws: FederationError.self) { try SecureTask(proto: bad, parameterCount: 650) }

        let record = try PrivacyConfig(mode: .record, epsilon: 2.5, delta: 1e-6, accountant: .rdp, clipNorm: 0.7)
        let wire = try #require(record.recordProto(plannedRounds: 12))
        #expect(wire.plannedRounds == 12)
        #expect(try PrivacyConfig(record: wire) == record)
        var unknown = wire
        unknown.accountant = "moments"
        #expect(throws: FederationError.self) { try PrivacyConfig(record: unknown) }
        #expect(try PrivacyConfig(mode: .central, noiseMultiplier: 1).recordProto(plannedRounds: 3) == nil)
    }
}
