import ConclaveConfig
import ConclaveCrypto
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

/// Hostile peers against a real gRPC server (in-process, real SQLite): out-of-range numbers, oversized and
/// control-character ids, idle streams and forged secure joins are refused where they enter; the coordinator
/// stays up, stores nothing about them, and the federation keeps committing.
@Suite struct HostileInputTests {
    static let plainSpec = """
        rounds = 3
        min_silos = 1
        [model]
        architecture = "logreg"
        input_features = 2
        num_classes = 2
        [training]
        learning_rate = 0.1
        [secure_aggregation]
        enabled = false  # the plain update path
        """

    static func silo(_ id: String, examples: UInt64 = 3) -> Conclave_V1_SiloDescription {
        .with { $0.siloID = id; $0.numExamples = examples; $0.numFeatures = 2; $0.numClasses = 2 }
    }

    static func fetch(_ federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>,
                      _ silo: Conclave_V1_SiloDescription) async throws -> Conclave_V1_TaskHeader? {
        try await federation.fetchTask(.with { $0.silo = silo }) { response in
            var header: Conclave_V1_TaskHeader?
            for try await chunk in response.messages { if case .header(let h) = chunk.kind { header = h } }
            return header
        }
    }

    /// This process's resident memory in MiB (VmRSS).
    static func residentMiB() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    static func siloCount(_ path: String) throws -> Int {
        try CoordinatorStore(path: path).silosCount()
    }

    @Test func outOfRangeAndJunkIdsAreRefusedAndNothingIsStored() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-hostile")
        try await InProcessCoordinator.with(spec: Self.plainSpec, directory: dir, logger: Logger(label: "hostile")) { driver, runID, federation in
            // Finding 1: num_examples ≥ 2⁶³ used to trap the coordinator before the allowlist was checked.
            for examples in [UInt64(1) << 63, UInt64.max, WireCheck.maxExamples + 1] {
                let error = await #expect(throws: RPCError.self) { try await Self.fetch(federation, Self.silo("big", examples: examples)) }
                #expect(error?.code == .invalidArgument)
                #expect(error?.message.contains("num_examples") == true)
            }
            // Every other numeric field of the description, out of range.
            let huge: [Conclave_V1_SiloDescription] = [
                .with { $0.siloID = "f"; $0.numExamples = 3; $0.numFeatures = .max; $0.numClasses = 2 },
                .with { $0.siloID = "c"; $0.numExamples = 3; $0.numFeatures = 2; $0.numClasses = .max },
                .with { $0.siloID = "k"; $0.numExamples = 3; $0.numFeatures = 2; $0.numClasses = 2; $0.identityKey = Data(count: 33) },
            ]
            for silo in huge {
                await #expect(throws: RPCError.self) { try await Self.fetch(federation, silo) }
            }
            // Finding 5: a 3.9 MB id, control characters, an empty id: refused, never echoed whole.
            let long = String(repeating: "x", count: 3_900_000)
            let error = await #expect(throws: RPCError.self) { try await Self.fetch(federation, Self.silo(long)) }
            #expect((error?.message.utf8.count ?? .max) < 300, "the refusal must not echo the id")
            // Memory stays bounded: ten more such requests (39 MB on the wire) leave nothing behind.
            let before = Self.residentMiB()
            for _ in 0..<10 { _ = try? await Self.fetch(federation, Self.silo(long)) }
            #expect(Self.residentMiB() - before < 64, "resident memory grew by \(Self.residentMiB() - before) MiB")
            for id in ["", "evil\r\nlevel=critical msg=forged", "esc\u{1B}[31m", "nul\u{0}byte", "tab\tid", "a b"] {
                let e = await #expect(throws: RPCError.self) { try await Self.fetch(federation, Self.silo(id)) }
                #expect(e?.code == .invalidArgument)
                #expect(e?.message.contains("\r") == false && e?.message.contains("\u{1B}") == false)
            }
            // Many refused ids: none reaches the silos table. A good silo still gets its task and commits.
            for i in 0..<200 {
                _ = try? await Self.fetch(federation, .with { $0.siloID = "junk-\(i)"; $0.numExamples = 3; $0.numFeatures = 99; $0.numClasses = 2 })
            }
            #expect(try Self.siloCount(dir + "/c.sqlite") == 0, "refused silos must leave no row")
            let header = try #require(try await Self.fetch(federation, Self.silo("good")))
            guard case .train(let task) = header.action else { Issue.record("the good silo should get a task"); return }
            #expect(task.runID == runID)
            #expect(try Self.siloCount(dir + "/c.sqlite") == 1)
        }
    }

    @Test func unknownSilosAreRefusedBeforeAnythingIsStored() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-allowlist")
        let config = try CoordinatorConfigFixture.allowing(["member"], directory: dir)
        let driver = try RunDriver(config: config, logger: Logger(label: "allow"))
        _ = try await driver.startRun(specTOML: Self.plainSpec, source: "run.toml")
        for i in 0..<100 {
            let silo = SiloInfo(id: "stranger-\(i)", examples: 3, features: 2, classes: 2, identityKey: Array(repeating: UInt8(i), count: 32))
            let error = await #expect(throws: FederationError.self) { try await driver.requestWork(from: silo) }
            #expect(error?.code == .permissionDenied)
        }
        #expect(try driver.store.silosCount() == 0)
        // A run that needs more silos than the federation allows is refused when it is defined.
        let tooMany = Self.plainSpec.replacingOccurrences(of: "min_silos = 1", with: "min_silos = 2")
        let refusal = await #expect(throws: FederationError.self) { try await driver.startRun(specTOML: tooMany, source: "big.toml") }
        #expect(refusal?.message.contains("allows only 1") == true)
    }

    @Test func idleStreamsDoNotHoldTheFederation() async throws {
        try await InProcessCoordinator.with(spec: Self.plainSpec, logger: Logger(label: "idle")) { driver, runID, federation in
            // Finding 4: streams that open and send nothing took the upload permits. Now they take none, and the
            // idle timeout closes them.
            let idle = (0..<3).map { _ in
                Task {
                    try await federation.submitUpdate(request: StreamingClientRequest { _ in
                        try await Task.sleep(for: .seconds(120))
                    })
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            for round in 1...3 {
                let header = try #require(try await Self.fetch(federation, Self.silo("worker")))
                guard case .train(let task) = header.action else { Issue.record("round \(round) should be handed out"); return }
                let update = [Float](repeating: 0.01, count: Int(task.totalValues))
                let reply = try await federation.submitUpdate(request: StreamingClientRequest { writer in
                    try await writer.write(.with {
                        $0.header = .with {
                            $0.silo = Self.silo("worker"); $0.runID = task.runID; $0.round = task.round
                            $0.totalValues = UInt64(update.count); $0.numExamples = 3; $0.trainLoss = 0.5
                        }
                    })
                    try await writer.write(.with { $0.weights = WeightsCodec.chunk(update, offset: 0) })
                })
                #expect(reply.accepted)
            }
            #expect(try driver.store.rounds(run: runID).map(\.round) == [1, 2, 3])
            for t in idle { t.cancel() }
        }
    }
}

extension HostileInputTests {
    static func header(_ task: Conclave_V1_TrainTask, silo: String) -> Conclave_V1_UpdateChunk {
        .with {
            $0.header = .with {
                $0.silo = Self.silo(silo); $0.runID = task.runID; $0.round = task.round
                $0.totalValues = task.totalValues; $0.numExamples = 3; $0.trainLoss = 0.5
            }
        }
    }

    /// A stream that sends its header and then goes quiet holds its silo's slot and an upload permit only until
    /// the idle timeout closes it; meanwhile a second stream for the same silo is refused, and other silos go on.
    @Test(.timeLimit(.minutes(2))) func slowStreamsAreClosedAndOneSiloHoldsOneStream() async throws {
        let spec = Self.plainSpec.replacingOccurrences(of: "min_silos = 1", with: "min_silos = 2")
        try await InProcessCoordinator.with(spec: spec, server: "stream_idle_seconds = 2",
                                            logger: Logger(label: "slow")) { driver, runID, federation in
            var tasks = [String: Conclave_V1_TrainTask]()
            for _ in 0..<3 {
                for id in ["slow", "fast"] where tasks[id] == nil {
                    if case .train(let t)? = try await Self.fetch(federation, Self.silo(id))?.action { tasks[id] = t }
                }
            }
            let slowTask = try #require(tasks["slow"]), fastTask = try #require(tasks["fast"])
            let stalled = Task {
                try await federation.submitUpdate(request: StreamingClientRequest { writer in
                    try await writer.write(Self.header(slowTask, silo: "slow"))
                    try await Task.sleep(for: .seconds(60))
                })
            }
            // Once the stalled stream holds the slot (it may take a moment on a busy machine), a second is refused.
            var second: RPCError?
            for _ in 0..<50 where second?.code != .resourceExhausted {
                try await Task.sleep(for: .milliseconds(100))
                do {
                    _ = try await federation.submitUpdate(request: StreamingClientRequest { writer in
                        try await writer.write(Self.header(slowTask, silo: "slow"))
                    })
                } catch let error as RPCError { second = error }
            }
            #expect(second?.code == .resourceExhausted)
            let closed = await #expect(throws: RPCError.self) { try await stalled.value }
            #expect(closed?.code == .deadlineExceeded)
            // The slow silo's slot is free again, and both silos' real updates close the round.
            for (id, task) in [("slow", slowTask), ("fast", fastTask)] {
                let update = [Float](repeating: 0.01, count: Int(task.totalValues))
                let reply = try await federation.submitUpdate(request: StreamingClientRequest { writer in
                    try await writer.write(Self.header(task, silo: id))
                    try await writer.write(.with { $0.weights = WeightsCodec.chunk(update, offset: 0) })
                })
                #expect(reply.accepted)
            }
            #expect(try driver.store.rounds(run: runID).map(\.round) == [1])
        }
    }
}

/// Coordinator configs for tests that need settings beyond the in-process default.
enum CoordinatorConfigFixture {
    static func allowing(_ silos: [String], directory: String) throws -> CoordinatorConfig {
        try CoordinatorConfig.parse("""
            [server]
            listen = "127.0.0.1:0"
            insecure = true
            [storage]
            database = "c.sqlite"
            checkpoints = "ckpt"
            [privacy]
            require_budgets = false
            [federation]
            allowed_silos = [\(silos.map { "\"\($0)\"" }.joined(separator: ", "))]
            """, source: directory + "/coordinator.toml")
    }
}

/// The coordinator's Prometheus endpoint, scraped over HTTP while a run goes on.
@Suite struct MetricsTests {
    /// A plain HTTP GET over a socket; returns the status line and the body.
    static func get(_ address: String, path: String) throws -> (status: String, body: String) {
        let hp = try HostPort(parsing: address)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(hp.host)
        addr.sin_port = UInt16(hp.port).bigEndian
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw TestFailure("cannot connect to \(address)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (parts.first?.components(separatedBy: "\r\n").first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func metricsAreServedAndCountWhatHappened() async throws {
        let dir = Fixtures.temporaryDirectory("conclave-metrics")
        let server = "address_file = \"addr\"\n[metrics]\nlisten = \"127.0.0.1:0\""
        try await InProcessCoordinator.with(spec: HostileInputTests.plainSpec, directory: dir, server: server,
                                            logger: Logger(label: "metrics")) { driver, runID, federation in
            for _ in 1...2 {
                let header = try #require(try await HostileInputTests.fetch(federation, HostileInputTests.silo("m")))
                guard case .train(let task) = header.action else { Issue.record("expected a task"); return }
                let update = [Float](repeating: 0.01, count: Int(task.totalValues))
                _ = try await federation.submitUpdate(request: StreamingClientRequest { writer in
                    try await writer.write(HostileInputTests.header(task, silo: "m"))
                    try await writer.write(.with { $0.weights = WeightsCodec.chunk(update, offset: 0) })
                })
            }
            _ = try? await HostileInputTests.fetch(federation, HostileInputTests.silo("bad id"))
            let address = try String(contentsOfFile: dir + "/addr.metrics", encoding: .utf8)
            let (status, body) = try Self.get(address, path: "/metrics")
            #expect(status.contains("200"))
            #expect(body.contains("conclave_rounds_committed_total 2"), "\(body)")
            #expect(body.contains("conclave_refusals_total{reason=\"invalidArgument\"} 1"))
            #expect(body.contains("conclave_received_bytes_total 48"))  // two updates of 6 float32 values
            #expect(body.contains("conclave_round_seconds_count 2"))
            #expect(body.contains("conclave_silos_live"))
            #expect(try Self.get(address, path: "/other").status.contains("404"))
        }
    }
}

extension HostileInputTests {
    /// A decline takes a silo out of a round, so only the silo may send it: unsigned or signed by another key,
    /// it is refused and the silo stays selected; signed by the silo's own key, it is taken.
    @Test func onlyTheSiloItselfCanDeclineItsTask() async throws {
        let key = Ed25519KeyPair()
        let victim = Conclave_V1_SiloDescription.with {
            $0.siloID = "victim"; $0.numExamples = 3; $0.numFeatures = 2; $0.numClasses = 2; $0.identityKey = Data(key.publicKey)
        }
        try await InProcessCoordinator.with(spec: Self.plainSpec.replacingOccurrences(of: "min_silos = 1", with: "min_silos = 1\nsilos_per_round = 1"),
                                            logger: Logger(label: "decline")) { driver, runID, federation in
            let header = try #require(try await Self.fetch(federation, victim))
            guard case .train(let task) = header.action else { Issue.record("expected a task"); return }
            func decline(signedBy signer: Ed25519KeyPair?) async throws -> Conclave_V1_DeclineTaskReply {
                try await federation.declineTask(.with {
                    $0.silo = victim; $0.runID = runID; $0.round = task.round; $0.reason = .privacyMode; $0.detail = "x"
                    if let signer {
                        $0.signature = Data(signer.sign(SignedStatement.decline(runID: runID, round: Int(task.round),
                                                                                reason: .privacyMode, silo: "victim")))
                    }
                })
            }
            for forger in [nil, Ed25519KeyPair()] {
                let error = await #expect(throws: RPCError.self) { try await decline(signedBy: forger) }
                #expect(error?.code == .permissionDenied)
            }
            guard case .train = try #require(try await Self.fetch(federation, victim)).action else {
                Issue.record("a forged decline must leave the silo in its round"); return
            }
            let accepted = try await decline(signedBy: key)
            #expect(accepted.message.contains("left out of round"))
            #expect(try driver.store.attempts(run: runID).first?.reason.contains("declined") == true)
        }
    }
}
