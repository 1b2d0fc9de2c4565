@testable import ConclaveWireConversions
import ConclaveFederation
import ConclaveLearning
import ConclaveSecAgg
import ConclaveTesting
import ConclaveWire
import Foundation
import SwiftProtobuf
import Testing

/// Randomized mutation of every wire decoder the coordinator and the agent run on peer input, and of the state
/// machines fed from them: 10⁵ mutated messages per decoder (bytes flipped, inserted, deleted, cut; varints
/// pushed to their extremes). Nothing may trap; every input either decodes to checked values or is refused
/// with a FederationError. Deterministic (seeded), so a failure is reproducible.
@Suite struct WireFuzzTests {
    static let perDecoder = 100_000

    /// One mutation of `bytes`: a few random edits, biased to the interesting values (0x00, 0xFF, 0x80).
    static func mutate(_ bytes: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var out = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let special: [UInt8] = [0x00, 0xFF, 0x80, 0x7F, 0x01, UInt8.random(in: 0...255, using: &rng)]
            let at = out.isEmpty ? 0 : Int.random(in: 0..<out.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !out.isEmpty: out[at] = special.randomElement(using: &rng)!
            case 1: out.insert(special.randomElement(using: &rng)!, at: at)
            case 2 where !out.isEmpty: out.remove(at: at)
            case 3 where !out.isEmpty: out = Array(out.prefix(at))
            case 4: out.insert(contentsOf: [UInt8](repeating: 0xFF, count: Int.random(in: 1...10, using: &rng)) + [0x01], at: at)
            default: if !out.isEmpty { out[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng) }
            }
        }
        return out
    }

    /// Runs `check` on 10⁵ mutations of `seed`'s encoding; returns how many decoded and passed the checks.
    static func fuzz<M: SwiftProtobuf.Message>(_ seed: M, _ salt: UInt64,
                                              _ check: (M) throws(FederationError) -> Void) throws -> Int {
        var rng = SeededGenerator(seed: 0xC0FFEE &+ salt)
        let valid: [UInt8] = try seed.serializedBytes()
        var accepted = 0, decoded = 0
        for _ in 0..<perDecoder {
            let bytes = mutate(valid, &rng)
            guard let message = try? M(serializedBytes: bytes) else { continue }
            decoded += 1
            do throws(FederationError) {
                try check(message)
                accepted += 1
            } catch {
                #expect(error.message.utf8.count < 2_000, "refusals stay small: \(error.message.prefix(80))")
            }
        }
        // Most mutations must still parse as protobuf, or the checks behind the parser are not being exercised.
        #expect(decoded > perDecoder / 50, "only \(decoded) of \(perDecoder) mutations of \(M.protoMessageName) decoded")
        return accepted
    }

    static let description = Conclave_V1_SiloDescription.with {
        $0.siloID = "hospital-north"; $0.numExamples = 1_000; $0.numFeatures = 2; $0.numClasses = 2
        $0.dataset = "fashion-mnist"; $0.identityKey = Data(repeating: 7, count: 32)
    }

    @Test func siloDescriptionsFeedTheRoundMachineWithoutTrapping() throws {
        let spec = try RunSpec(name: "f", model: ModelSpec(architecture: .logreg, inputFeatures: 2, hidden: [], classCount: 2),
                               rounds: 2, training: TrainingConfig(), minSilos: 2, roundDeadlineSeconds: 10)
        var machine = RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 6))
        var now = 0.0
        let accepted = try Self.fuzz(Self.description, 1) { (p: Conclave_V1_SiloDescription) throws(FederationError) in
            let silo = try SiloInfo(proto: p)
            #expect(silo.examples <= WireCheck.maxExamples && silo.id.utf8.count <= WireCheck.maxNameBytes)
            now += 0.001
            _ = try? machine.requestWork(from: silo, now: now)
            _ = try? machine.decline(from: silo, runID: "run-1", round: 1, reason: .privacyMode, now: now)
            _ = machine.tick(now: now)
        }
        #expect(accepted > 0, "some mutations must still be valid, or the fuzzer tests nothing")
    }

    @Test func updateHeadersPrivacyReportsAndChunks() throws {
        let header = Conclave_V1_UpdateHeader.with {
            $0.silo = Self.description; $0.runID = "run-1"; $0.round = 1; $0.totalValues = 6; $0.numExamples = 10
            $0.trainLoss = 0.5; $0.trainSeconds = 1
            $0.privacy = .with { $0.epsilon = 1; $0.delta = 1e-5; $0.noiseMultiplier = 1.1; $0.samplingRate = 0.01; $0.steps = 100 }
        }
        _ = try Self.fuzz(header, 2) { (h: Conclave_V1_UpdateHeader) throws(FederationError) in
            _ = try SiloInfo(proto: h.silo)
            try WireCheck.name(h.runID, "run id")
            _ = try WireCheck.finite(h.trainLoss, "loss", in: 0...1e30)
            if h.hasPrivacy { _ = try SiloPrivacy(proto: h.privacy) }
            _ = try WeightsAssembler(total: h.totalValues, expected: 6, what: "update")
        }
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let chunk = Conclave_V1_UpdateChunk.with { $0.weights = WeightsCodec.chunk(values, offset: 0) }
        _ = try Self.fuzz(chunk, 3) { (c: Conclave_V1_UpdateChunk) throws(FederationError) in
            var assembler = try WeightsAssembler(total: 6, expected: 6, what: "update")
            guard case .weights(let w) = c.kind else { return }
            try assembler.add(w)
            _ = try assembler.finish()
        }
    }

    @Test func secureMessagesFeedTheProtocolWithoutTrapping() throws {
        let join = Conclave_V1_SecureClientMessage.with {
            $0.join = .with {
                $0.silo = Self.description; $0.runID = "run-1"; $0.round = 1; $0.numExamples = 5
                $0.keys = .with {
                    $0.siloID = "hospital-north"; $0.encryptionKey = Data(repeating: 1, count: 32)
                    $0.maskKey = Data(repeating: 2, count: 32); $0.signature = Data(repeating: 3, count: 64)
                }
            }
        }
        let members = ["hospital-north", "a", "b"]
        let task = try SecureTask(context: Array("run-1/round-1".utf8), threshold: 2, prg: .aes, members: members, degree: nil,
                                  graphSeed: [UInt8](repeating: 0, count: 32),
                                  directory: Dictionary(uniqueKeysWithValues: members.map { ($0, [UInt8](repeating: 9, count: 32)) }),
                                  clipNorm: 1, weight: 1, precisionBits: 16, parameterCount: 6)
        var round = try SecureRound(tasks: Dictionary(uniqueKeysWithValues: members.map { ($0, task) }), minimum: 2,
                                    phaseTimeout: 10, advertisingDeadline: 1e9)
        _ = try Self.fuzz(join, 4) { (m: Conclave_V1_SecureClientMessage) throws(FederationError) in
            guard case .join(let j) = m.kind else { return }
            let silo = try SiloInfo(proto: j.silo)
            let keys = try KeyAdvertisement(checking: j.keys)
            let stats = RoundStateMachine.Contribution(silo: silo.id, examples: 1, trainLoss: 0, trainSeconds: 0)
            _ = try? round.receive(.keys(keys, stats), from: silo.id, now: 0)
        }
        let shares = Conclave_V1_SecureClientMessage.with {
            $0.shares = .with {
                $0.shares = [.with { $0.fromSilo = "hospital-north"; $0.toSilo = "a"; $0.ciphertext = Data(repeating: 5, count: 120) }]
            }
        }
        _ = try Self.fuzz(shares, 5) { (m: Conclave_V1_SecureClientMessage) throws(FederationError) in
            guard case .shares(let s) = m.kind else { return }
            let decoded = try s.shares.map { p throws(FederationError) in try EncryptedShare(checking: p) }
            _ = try? round.receive(.shares(decoded), from: "hospital-north", now: 0)
        }
        let unmasking = Conclave_V1_SecureClientMessage.with {
            $0.unmasking = .with {
                $0.selfMaskShares = ["a": .with { $0.x = 1; $0.values = [1, 2, 3, 4, 5]; $0.secretLength = 32 }]
                $0.maskKeyShares = ["b": .with { $0.x = 2; $0.values = [9, 8, 7, 6, 5]; $0.secretLength = 32 }]
            }
        }
        _ = try Self.fuzz(unmasking, 6) { (m: Conclave_V1_SecureClientMessage) throws(FederationError) in
            guard case .unmasking(let u) = m.kind else { return }
            let response = try UnmaskingResponse(silo: "hospital-north", proto: u)
            _ = try? round.receive(.unmasking(response), from: "hospital-north", now: 0)
        }
    }

    @Test func agentSideTaskDecoders() throws {
        let members = ["s0", "s1", "s2"]
        let task = Conclave_V1_TrainTask.with {
            $0.runID = "run-1"; $0.round = 1; $0.totalValues = 6; $0.privacyMode = "none"
            $0.model = .with { $0.architecture = "logreg"; $0.inputFeatures = 2; $0.numClasses = 2 }
            $0.training = .with { $0.localEpochs = 1; $0.batchSize = 8; $0.learningRate = 0.1; $0.optimizer = "sgd" }
            $0.secure = .with {
                $0.context = Data("ctx".utf8); $0.threshold = 2; $0.prg = "aes"; $0.members = members
                $0.graphSeed = Data(count: 32); $0.identityKeys = Dictionary(uniqueKeysWithValues: members.map { ($0, Data(count: 32)) })
                $0.clipNorm = 1; $0.weight = 0.5; $0.precisionBits = 16
            }
        }
        _ = try Self.fuzz(task, 7) { (t: Conclave_V1_TrainTask) throws(FederationError) in
            let model = try ModelSpec(proto: t.model)
            guard model.parameterCount <= 1 << 20 else { return }
            _ = try TrainingConfig(proto: t.training)
            if t.hasSecure { _ = try SecureTask(proto: t.secure, parameterCount: model.parameterCount) }
            _ = SiloPolicy().refusal(secure: t.hasSecure ? (Int(t.secure.threshold), t.secure.members.count) : nil,
                                     privacyMode: t.privacyMode)
        }
    }
}

extension WireFuzzTests {
    /// The libFuzzer target's replayer (built without the sanitizer by `make test`) takes any bytes without
    /// trapping, so a crash libFuzzer finds can be replayed and turned into a test.
    @Test func theFuzzTargetReplaysInputs() throws {
        let dir = Fixtures.temporaryDirectory("conclave-fuzz-corpus")
        var rng = SeededGenerator(seed: 7)
        var paths = [String]()
        let seeds: [[UInt8]] = [try Self.description.serializedBytes(), [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], []]
        for (i, seed) in seeds.enumerated() {
            for j in 0..<20 {
                let path = "\(dir)/input-\(i)-\(j)"
                FileManager.default.createFile(atPath: path, contents: Data(Self.mutate(seed, &rng)))
                paths.append(path)
            }
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Cluster.executable("conclave-wire-fuzz"))
        p.arguments = paths
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && p.terminationReason == .exit)
    }
}
