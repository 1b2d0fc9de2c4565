import ConclaveConfig
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclaveAdminClient
import ConclaveAgent
import ConclaveCoordinator
import ConclaveSupport
import ConclaveWireConversions
import ConclaveSecAgg
import ConclaveStorage
import ConclaveTesting
import ConclaveWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import SwiftProtobuf
import Synchronization
import Testing

/// Secure aggregation over real gRPC against an in-process coordinator: silos drop out at every phase, the
/// committed model is exactly the decoded mean of the survivors' quantized inputs, and nothing the
/// coordinator stores or logs holds an individual update.
@Suite struct SecureAggregationTests {
    static let features = 64, classes = 10  // 650 parameters

    struct Silo: Sendable {
        let id: String
        let identity = Ed25519KeyPair()
        let examples: UInt64
        var description: Conclave_V1_SiloDescription {
            .with {
                $0.siloID = id; $0.numExamples = examples; $0.numFeatures = UInt32(SecureAggregationTests.features)
                $0.numClasses = UInt32(SecureAggregationTests.classes); $0.identityKey = Data(identity.publicKey)
            }
        }
    }

    struct Contribution: Sendable {
        let silo: String
        let update: [Float]
        let input: [UInt32]
        let weight: Double
        let outcome: SecureExchange.Outcome?
    }

    @Test(.timeLimit(.minutes(5))) func silosDropAtEveryPhaseAndTheSumIsExact() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-secure")
        let logs = LogCapture()
        let logger = Logger(label: "secure-test") { _ in logs.handler() }
        let spec = """
            rounds = 2
            min_silos = 3
            silos_per_round = 5
            round_deadline_seconds = 120
            [model]
            architecture = "logreg"
            input_features = \(Self.features)
            num_classes = \(Self.classes)
            [training]
            learning_rate = 0.1
            [secure_aggregation]
            clip_norm = 4
            dropout_rate = 0.4
            phase_timeout_seconds = 20
            """
        let silos = (0..<5).map { Silo(id: "s\($0)", examples: UInt64(100 + 50 * $0)) }
        // n = 5 with 40 % tolerated dropout: t = 3, so two silos may vanish per round, here at each phase.
        let plans: [[String: SecureExchange.DropPoint]] = [["s1": .afterKeys, "s3": .afterShares],
                                                           ["s0": .afterMaskedInput, "s2": .afterSignature]]
        // Over mutual TLS: every silo on its own connection with its own certificate.
        let all = try await InProcessCoordinator.withMutualTLS(spec: spec, directory: dir, silos: silos.map { ($0.id, $0.identity.publicKey) },
                                                               logger: logger) { driver, runID, clients in
            var all = [Contribution]()
            var global = [Float](repeating: 0, count: 650)
            for (index, plan) in plans.enumerated() {
                let round = index + 1
                let tasks = try await Self.fetchTasks({ clients[$0]! }, silos)
                if round == 1 { global = tasks["s0"]!.0 }  // the run's seeded initial model
                #expect(tasks.values.allSatisfy { $0.0 == global }, "every silo trains from the committed model")
                if round == 1 {
                    // A forged key advertisement is refused at once, and the silo can still take part.
                    try await Self.expectForgedJoinRefused(clients["s4"]!, silos[4], task: tasks["s4"]!.1, runID: runID)
                }
                let contributions = try await withThrowingTaskGroup(of: Contribution.self) { inner in
                    for silo in silos {
                        inner.addTask {
                            try await Self.contribute(clients[silo.id]!, silo, task: tasks[silo.id]!.1, runID: runID,
                                                      round: round, dropAfter: plan[silo.id])
                        }
                    }
                    return try await inner.reduce(into: [Contribution]()) { $0.append($1) }
                }
                all += contributions
                let survivors = contributions.filter { c in
                    plan[c.silo].map { [.afterMaskedInput, .afterSignature].contains($0) } ?? true
                }
                #expect(survivors.count == (round == 1 ? 3 : 5))
                for c in contributions where plan[c.silo] == nil {
                    #expect(c.outcome?.completed == true, "\(c.silo): \(c.outcome?.message ?? "no outcome")")
                    #expect(c.outcome?.unmasked == survivors.count)
                    #expect(c.outcome?.dropped == 5 - survivors.count)
                }
                var sum = [UInt32](repeating: 0, count: 650)
                for c in survivors { sum.addModular(c.input) }
                let encoding = try FixedPointEncoding(clipNorm: 4, maxSilos: 5)
                let weight = survivors.reduce(0.0) { $0 + $1.weight }
                let delta = encoding.decode(sum: sum).map { $0 * Float(1 / weight) }
                var expected = global
                var optimizer = ServerOptimizer(config: ServerOptimizerConfig(), parameterCount: 650)
                optimizer.apply(delta: delta, to: &expected)
                let exported = try await driver.exportModel(runID: runID, round: round)
                let exact = exported.weights == expected
                #expect(exact, "round \(round): the model is the exact decoded mean of the survivors' inputs")
                let record = try #require(try driver.store.rounds(run: runID).last)
                #expect(record.round == round)
                #expect(record.unmasked == survivors.count && record.dropped == 5 - survivors.count)
                #expect(record.silos == survivors.map(\.silo).sorted())
                global = expected
            }
            return all
        }
        try Self.expectNoIndividualUpdate(all, directory: dir, log: logs.text)
    }

    /// Polls as every silo until all five hold a task for the same round.
    static func fetchTasks<T: ClientTransport>(_ client: (String) -> Conclave_V1_Federation.Client<T>,
                                              _ silos: [Silo]) async throws -> [String: ([Float], Conclave_V1_TrainTask)] {
        var tasks = [String: ([Float], Conclave_V1_TrainTask)]()
        for _ in 0..<200 where tasks.count < silos.count {
            for silo in silos where tasks[silo.id] == nil {
                let fetched: ([Float], Conclave_V1_TrainTask)? = try await client(silo.id).fetchTask(.with { $0.silo = silo.description }) { response in
                    var train: Conclave_V1_TrainTask?
                    var assembler: WeightsAssembler?
                    for try await chunk in response.messages {
                        switch chunk.kind {
                        case .header(let h):
                            if case .train(let t) = h.action {
                                train = t
                                assembler = try WeightsAssembler(total: t.totalValues, expected: Int(t.totalValues), what: "weights")
                            }
                        case .weights(let w): try assembler?.add(w)
                        case .none: break
                        }
                    }
                    guard let train, let assembler else { return nil }
                    return (try assembler.finish(), train)
                }
                if let fetched { tasks[silo.id] = fetched }
            }
            if tasks.count < silos.count { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(Set(tasks.values.map(\.1.round)).count == 1)
        #expect(tasks.values.allSatisfy { $0.1.hasSecure })
        return tasks
    }

    static func update(for silo: String, round: Int) -> [Float] {
        var rng = SeededGenerator(seed: UInt64(round * 100 + Int(silo.dropFirst())!))
        return (0..<650).map { _ in Float(rng.nextGaussian() * 0.05) }
    }

    static func contribute<T: ClientTransport>(_ federation: Conclave_V1_Federation.Client<T>, _ silo: Silo,
                                               task: Conclave_V1_TrainTask, runID: String, round: Int,
                                               dropAfter: SecureExchange.DropPoint?) async throws -> Contribution {
        let secure = try SecureTask(proto: task.secure, parameterCount: 650)
        let update = update(for: silo.id, round: round)
        let session = try SecureSiloSession(siloID: silo.id, identity: silo.identity, task: secure, update: update)
        let stats = RoundStateMachine.Contribution(silo: silo.id, examples: silo.examples, trainLoss: 1, trainSeconds: 0)
        let outcome = try await SecureExchange.run(federation, silo: silo.description, runID: runID, round: round,
                                                   session: session, stats: stats, dropAfter: dropAfter)
        return Contribution(silo: silo.id, update: update, input: session.input, weight: secure.weight, outcome: outcome)
    }

    /// Finding 6: a stream that claims to be a silo and fails verification used to mark the real silo as gone.
    /// Here forged joins for s0 keep arriving throughout a round: every one is refused, and s0 is in the sum.
    @Test(.timeLimit(.minutes(3))) func forgedJoinsDuringARoundChangeNothing() async throws {
        let spec = """
            rounds = 1
            min_silos = 3
            silos_per_round = 3
            [model]
            architecture = "logreg"
            input_features = \(Self.features)
            num_classes = \(Self.classes)
            [training]
            learning_rate = 0.1
            [secure_aggregation]
            clip_norm = 4
            phase_timeout_seconds = 20
            """
        let silos = (0..<3).map { Silo(id: "s\($0)", examples: 100) }
        try await InProcessCoordinator.with(spec: spec, logger: Logger(label: "forged")) { driver, runID, federation in
            let tasks = try await Self.fetchTasks({ _ in federation }, silos)
            let forging = Task {
                var refused = 0
                while !Task.isCancelled {
                    // Refused in every phase: for its signature, or as out of turn once s0 has joined.
                    if (try? await Self.sendForgedJoin(federation, silos[0], task: tasks["s0"]!.1, runID: runID)) != nil { refused += 1 }
                    // A resume that claims s0's attempt without s0's key is refused too.
                    if (try? await Self.sendForgedResume(federation, silos[0], task: tasks["s0"]!.1, runID: runID)) != nil { refused += 1 }
                }
                return refused
            }
            try await Task.sleep(for: .milliseconds(50))
            let contributions = try await withThrowingTaskGroup(of: Contribution.self) { group in
                for silo in silos {
                    group.addTask {
                        try await Self.contribute(federation, silo, task: tasks[silo.id]!.1, runID: runID, round: 1, dropAfter: nil)
                    }
                }
                return try await group.reduce(into: [Contribution]()) { $0.append($1) }
            }
            forging.cancel()
            #expect(await forging.value > 0)
            for c in contributions {
                #expect(c.outcome?.completed == true, "\(c.silo): \(c.outcome?.message ?? "no outcome")")
                #expect(c.outcome?.unmasked == 3 && c.outcome?.dropped == 0)
            }
            #expect(try driver.store.rounds(run: runID).first?.silos == ["s0", "s1", "s2"])
        }
    }

    static func expectForgedJoinRefused<T: ClientTransport>(_ federation: Conclave_V1_Federation.Client<T>, _ silo: Silo,
                                                            task: Conclave_V1_TrainTask, runID: String) async throws {
        let error = try await sendForgedJoin(federation, silo, task: task, runID: runID)
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("bad signature") == true, "\(error?.message ?? "not refused")")
    }

    /// Sends a resume of `silo`'s attempt signed by an impostor's key; returns the refusal.
    static func sendForgedResume<T: ClientTransport>(_ federation: Conclave_V1_Federation.Client<T>, _ silo: Silo,
                                                     task: Conclave_V1_TrainTask, runID: String) async throws -> RPCError? {
        let impostor = Ed25519KeyPair()
        let context = Array(task.secure.context)
        do {
            _ = try await federation.secureAggregate(request: StreamingClientRequest { writer in
                try await writer.write(.with {
                    $0.resume = .with {
                        $0.siloID = silo.id; $0.runID = runID; $0.round = task.round; $0.context = Data(context)
                        $0.signature = Data(impostor.sign(SignedStatement.resume(context: context, silo: silo.id)))
                    }
                })
            }) { response in
                for try await _ in response.messages {}
            }
            if !Task.isCancelled { Issue.record("a resume signed by another key must be refused") }
            return nil
        } catch let error as RPCError {
            if !Task.isCancelled {  // the forging task is cancelled when the round is over
                #expect(error.code == .invalidArgument || error.code == .failedPrecondition, "\(error)")
            }
            return error
        }
    }

    /// Sends a join for `silo` signed by an impostor's key; returns the refusal (nil if it was not refused).
    static func sendForgedJoin<T: ClientTransport>(_ federation: Conclave_V1_Federation.Client<T>, _ silo: Silo,
                                                   task: Conclave_V1_TrainTask, runID: String) async throws -> RPCError? {
        let secure = try SecureTask(proto: task.secure, parameterCount: 650)
        let impostor = Ed25519KeyPair()
        var directory = secure.directory
        directory[silo.id] = impostor.publicKey
        var forgedTask = secure
        forgedTask.directory = directory
        var session = try SecureSiloSession(siloID: silo.id, identity: impostor, task: forgedTask,
                                            update: [Float](repeating: 0, count: 650))
        guard case .keys(let ad, _) = session.start(.init(silo: silo.id, examples: 1, trainLoss: 0, trainSeconds: 0)) else { return nil }
        do {
            _ = try await federation.secureAggregate(request: StreamingClientRequest { writer in
                try await writer.write(.with {
                    $0.join = .with { j in
                        j.silo = silo.description; j.runID = runID; j.round = task.round
                        j.keys = .with { $0.siloID = ad.silo; $0.encryptionKey = Data(ad.encryptionKey)
                                         $0.maskKey = Data(ad.maskKey); $0.signature = Data(ad.signature) }
                    }
                })
            }) { response in
                for try await _ in response.messages {}
            }
            Issue.record("a key advertisement signed by another key must be refused")
            return nil
        } catch let error as RPCError {
            return error
        }
    }

    /// Scans the database, the checkpoints and the log for any run of 8 consecutive values of any silo's
    /// update — as float32 bytes, as its quantized input's bytes, or printed.
    static func expectNoIndividualUpdate(_ contributions: [Contribution], directory: String, log: String) throws {
        var stored = Data()
        let files = FileManager.default.enumerator(atPath: directory)?.compactMap { $0 as? String } ?? []
        for file in files {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + file
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                stored.append(try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        #expect(stored.count > 10_000, "the scan must see the database and the checkpoints")
        #expect(log.contains("round closed"), "the scan must see the coordinator's log")
        for c in contributions {
            for start in stride(from: 0, to: 640, by: 64) {
                let floats = c.update[start..<(start + 8)].withUnsafeBytes { Data($0) }
                let ints = c.input[start..<(start + 8)].withUnsafeBytes { Data($0) }
                #expect(stored.range(of: floats) == nil, "\(c.silo)'s update is stored in the clear")
                #expect(stored.range(of: ints) == nil, "\(c.silo)'s quantized input is stored")
                #expect(!log.contains("\(c.update[start])"), "\(c.silo)'s update appears in the log")
            }
        }
    }
}

/// Collects every log line (message and metadata) written through it.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    func handler() -> Handler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.lines.withLock { $0.append("\(event.level) \(event.message) \(all)") }
        }
    }
}
