import ArgumentParser
import ConclaveConfig
import ConclaveCoordinator
import ConclaveCrypto
import ConclaveFederation
import ConclaveIdentity
import ConclaveStorage
import ConclaveWire
import ConclaveWireConversions
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import SwiftASN1
import SwiftProtobuf
import X509

/// `conclave-coordinator bench-tls` (run by `conclave bench tls`): what mutual TLS costs, measured against the
/// real coordinator server on loopback, plaintext and mTLS in one process run: (1) a new connection plus one
/// RPC, repeated; (2) a plain FedAvg round's wall time with silos fetching the model and sending an update of
/// the same size over gRPC (no training: the transport is what differs).
struct TLSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-tls", abstract: "Time TLS handshakes and rounds against plaintext.", shouldDisplay: false)
    @Option(help: "Parameters of the model (101770 is the demo's 784-128-10 MLP; otherwise a logistic regression).")
    var params = 101_770
    @Option(help: "Silos per round.") var silos = 3
    @Option(help: "Rounds timed per transport.") var rounds = 5
    @Option(help: "Connections timed per transport.") var handshakes = 200
    @Flag(help: "Print one JSON object.") var json = false

    struct Result { var connectSeconds: Double; var roundSeconds: Double }

    func run() async throws {
        let plain = try await measure(tls: false)
        let mutual = try await measure(tls: true)
        let object: [String: Any] = [
            "params": params, "silos": silos, "rounds": rounds, "handshakes": handshakes,
            "plaintext_connect_rpc_ms": plain.connectSeconds * 1000, "mtls_connect_rpc_ms": mutual.connectSeconds * 1000,
            "plaintext_round_s": plain.roundSeconds, "mtls_round_s": mutual.roundSeconds,
            "round_ratio": mutual.roundSeconds / plain.roundSeconds,
        ]
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "new connection + 1 RPC: plaintext %.2f ms, mutual TLS %.2f ms (+%.2f ms per handshake)",
                         plain.connectSeconds * 1000, mutual.connectSeconds * 1000, (mutual.connectSeconds - plain.connectSeconds) * 1000))
            print(String(format: "round, %d silos × %d parameters: plaintext %.3f s, mutual TLS %.3f s (× %.2f)",
                         silos, params, plain.roundSeconds, mutual.roundSeconds, mutual.roundSeconds / plain.roundSeconds))
        }
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    func measure(tls: Bool) async throws -> Result {
        let dir = NSTemporaryDirectory() + "conclave-tls-bench-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try FederationSetup.create(federation: "bench", dir: dir + "/pki", hosts: ["127.0.0.1"], operator: "operator", days: 1).ca
        let ids = (0..<silos).map { "silo-\($0)" }
        var clients = [IdentityDirectory]()
        for id in ids {
            let d = IdentityDirectory(path: dir + "/" + id)
            try ca.issueIdentity(PeerIdentity(federation: "bench", role: .silo, name: id), lifetime: 86_400, into: d)
            clients.append(d)
        }
        clients.append(IdentityDirectory(path: dir + "/pki/operators/operator"))
        let config = try CoordinatorConfig.parse("""
            [server]
            listen = "127.0.0.1:0"
            \(tls ? "" : "insecure = true")
            [storage]
            database = "c.sqlite"
            checkpoints = "ckpt"
            \(tls ? "[tls]\ndir = \"pki\"\nenrol_listen = \"127.0.0.1:0\"" : "")
            """, source: dir + "/coordinator.toml")
        let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        let driver = try RunDriver(config: config, logger: logger)
        let keys = ids.map { _ in Ed25519KeyPair() }
        for (id, key) in zip(ids, keys) {
            _ = try driver.store.enrolIdentity(silo: id, key: key.publicKey, dataset: "", examples: 100, now: 0)
        }
        let authority = tls ? IdentityAuthority(
            pki: try CoordinatorPKI(directory: dir + "/pki", revokedSerials: [], revokedIdentities: []), store: driver.store,
            certificateSeconds: 86_400, tokenSeconds: 3600, enrolmentAddress: "", logger: logger) : nil
        let server = CoordinatorServer(config: config, driver: driver, authority: authority, logger: logger)
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        let (bound, announce) = AsyncStream<String>.makeStream()
        let serving = Task { try await server.run(until: { for await _ in stopped {} }, onListening: { announce.yield($0) }) }
        defer { stop.finish(); serving.cancel() }
        var iterator = bound.makeAsyncIterator()
        guard let address = await iterator.next() else { throw ValidationError("the server did not start") }
        let host = try HostPort(parsing: address)
        func transport(_ client: IdentityDirectory) throws -> HTTP2ClientTransport.Posix {
            try HTTP2ClientTransport.Posix(target: .ipv4(address: host.host, port: host.port),
                                           transportSecurity: tls ? ClientTLS.mutual(client) : .plaintext)
        }

        // (1) A new connection and one RPC, over and over.
        let start = ContinuousClock.now
        for _ in 0..<handshakes {
            _ = try await withGRPCClient(transport: try transport(clients.last!)) { client in
                try await Conclave_V1_Admin.Client(wrapping: client).listRuns(.init())
            }
        }
        let connect = Self.seconds(ContinuousClock.now - start) / Double(handshakes)

        // (2) Rounds: every silo fetches the model and sends an update of the same size.
        let (model, features) = params == 101_770 ? ("architecture = \"mlp\"\ninput_features = 784\nhidden = [128]", 784)
                                                  : ("architecture = \"logreg\"\ninput_features = \(max(1, params / 10 - 1))", max(1, params / 10 - 1))
        let run = try await driver.startRun(specTOML: """
            rounds = \(rounds)
            min_silos = \(silos)
            round_deadline_seconds = 3600
            [model]
            \(model)
            num_classes = 10
            [training]
            learning_rate = 0.1
            [secure_aggregation]
            enabled = false
            """, source: "bench.toml")
        var roundTimes = [Double]()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, id) in ids.enumerated() {
                let info = SiloInfo(id: id, examples: 100, features: features, classes: 10, identityKey: keys[i].publicKey)
                let t = try transport(clients[i])
                group.addTask {
                    try await withGRPCClient(transport: t) { client in
                        try await Self.silo(Conclave_V1_Federation.Client(wrapping: client), info: info, runID: run.id, rounds: rounds)
                    }
                }
            }
            var last = ContinuousClock.now
            var seen = 0
            while seen < rounds {
                let done = try driver.store.rounds(run: run.id).count
                if done > seen {
                    let now = ContinuousClock.now
                    roundTimes.append(Self.seconds(now - last) / Double(done - seen))
                    last = now
                    seen = done
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            try await group.waitForAll()
        }
        // The first round includes the silos' first connections; the rest are steady state.
        let steady = roundTimes.count > 1 ? Array(roundTimes.dropFirst()) : roundTimes
        return Result(connectSeconds: connect, roundSeconds: steady.reduce(0, +) / Double(steady.count))
    }

    /// A silo without training: fetch the task, send an update of the model's size, until `rounds` are done.
    static func silo(_ federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>, info: SiloInfo, runID: String,
                     rounds: Int) async throws {
        var done = 0
        while done < rounds {
            let fetched: (round: UInt32, count: Int)? = try await federation.fetchTask(.with { $0.silo = info.proto }) { response in
                var task: Conclave_V1_TrainTask?
                var received = 0
                for try await chunk in response.messages {
                    switch chunk.kind {
                    case .header(let h): if case .train(let t) = h.action { task = t }
                    case .weights(let w): received += w.values.count / 4
                    case .none: break
                    }
                }
                return task.map { ($0.round, received) }
            }
            guard let fetched else { try await Task.sleep(for: .milliseconds(5)); continue }
            let update = [Float](repeating: 0.001, count: fetched.count)
            let header = Conclave_V1_UpdateHeader.with {
                $0.silo = info.proto
                $0.runID = runID
                $0.round = fetched.round
                $0.totalValues = UInt64(update.count)
                $0.numExamples = 100
            }
            let request = StreamingClientRequest<Conclave_V1_UpdateChunk> { writer in
                try await writer.write(.with { $0.header = header })
                for offset in WeightsCodec.offsets(count: update.count) {
                    try await writer.write(.with { $0.weights = WeightsCodec.chunk(update, offset: offset) })
                }
            }
            _ = try await federation.submitUpdate(request: request)
            done = Int(fetched.round)
        }
    }
}
