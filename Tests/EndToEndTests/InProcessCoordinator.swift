import ConclaveConfig
import ConclaveIdentity
import ConclaveAdminClient
import ConclaveAgent
import ConclaveCoordinator
import ConclaveSupport
import ConclaveWireConversions
import ConclaveStorage
import ConclaveTesting
import ConclaveWire
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging

/// A coordinator in this process on a loopback port (real gRPC, real SQLite), with one run started from
/// `spec`; `body` gets the driver, the run id and a Federation client. The server stops when `body` returns.
enum InProcessCoordinator {
    /// A coordinator config listening on a free loopback port, its state under `directory`.
    static func config(directory: String, server: String = "") throws -> CoordinatorConfig {
        try CoordinatorConfig.parse("""
            [server]
            listen = "127.0.0.1:0"
            insecure = true
            \(server)
            [storage]
            database = "c.sqlite"
            checkpoints = "ckpt"
            [privacy]
            require_budgets = false
            """, source: directory + "/coordinator.toml")
    }


    static func with<T: Sendable>(
        spec: String, directory: String = Fixtures.temporaryDirectory("conclave-coordinator"), server: String = "",
        logger: Logger,
        _ body: @Sendable (RunDriver, String, Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let config = try Self.config(directory: directory, server: server)
        let driver = try RunDriver(config: config, logger: logger)
        _ = try await driver.startRun(specTOML: spec, source: "run.toml")
        guard let runID = try driver.store.runs().first?.id else { throw TestFailure("the run did not start") }
        let server = CoordinatorServer(config: config, driver: driver, logger: logger)
        let (addressStream, addressContinuation) = AsyncStream.makeStream(of: String.self)
        let (stopStream, stopContinuation) = AsyncStream.makeStream(of: Void.self)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.run(until: { for await _ in stopStream { return } },
                                     onListening: { addressContinuation.yield($0) })
            }
            var iterator = addressStream.makeAsyncIterator()
            guard let text = await iterator.next() else { throw TestFailure("the coordinator did not start listening") }
            let address = try HostPort(parsing: text)
            let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port),
                                                           transportSecurity: .plaintext)
            let result = try await withGRPCClient(transport: transport) { client in
                try await body(driver, runID, Conclave_V1_Federation.Client(wrapping: client))
            }
            stopContinuation.yield()
            stopContinuation.finish()
            try await group.waitForAll()
            return result
        }
    }

    /// As `with`, over mutual TLS: a federation CA in `directory/pki`, each silo's Ed25519 key bound to its id
    /// (as enrolment does) and a certificate per silo; `body` gets one Federation client per silo id, each on
    /// its own connection with that silo's certificate.
    static func withMutualTLS<T: Sendable>(
        spec: String, directory: String = Fixtures.temporaryDirectory("conclave-coordinator"), silos: [(id: String, key: [UInt8])],
        logger: Logger,
        _ body: @Sendable (RunDriver, String, [String: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>]) async throws -> T
    ) async throws -> T {
        try await withMutualTLSClients(spec: spec, directory: directory, silos: silos, logger: logger) { driver, runID, clients in
            try await body(driver, runID, clients.mapValues { Conclave_V1_Federation.Client(wrapping: $0) })
        }
    }

    /// As `withMutualTLS`, handing `body` each silo's raw client (for any service).
    static func withMutualTLSClients<T: Sendable>(
        spec: String, directory: String = Fixtures.temporaryDirectory("conclave-coordinator"), silos: [(id: String, key: [UInt8])],
        logger: Logger,
        _ body: @Sendable (RunDriver, String, [String: GRPCClient<HTTP2ClientTransport.Posix>]) async throws -> T
    ) async throws -> T {
        let ca = try FederationSetup.create(federation: "test", dir: directory + "/pki", hosts: ["127.0.0.1"], operator: "admin", days: 1).ca
        let config = try CoordinatorConfig.parse("""
            [server]
            listen = "127.0.0.1:0"
            [storage]
            database = "c.sqlite"
            checkpoints = "ckpt"
            [privacy]
            require_budgets = false
            [tls]
            dir = "pki"
            enrol_listen = "127.0.0.1:0"
            """, source: directory + "/coordinator.toml")
        let driver = try RunDriver(config: config, logger: logger)
        var identities = [String: IdentityDirectory]()
        for silo in silos {
            _ = try driver.store.enrolIdentity(silo: silo.id, key: silo.key, dataset: "", examples: 1, now: 0)
            let dir = IdentityDirectory(path: directory + "/" + silo.id + ".tls")
            try ca.issueIdentity(PeerIdentity(federation: "test", role: .silo, name: silo.id), lifetime: 86_400, into: dir)
            identities[silo.id] = dir
        }
        _ = try await driver.startRun(specTOML: spec, source: "run.toml")
        guard let runID = try driver.store.runs().first?.id else { throw TestFailure("the run did not start") }
        let authority = IdentityAuthority(pki: try CoordinatorPKI(directory: directory + "/pki", revokedSerials: [], revokedIdentities: []),
                                          store: driver.store, certificateSeconds: 86_400, tokenSeconds: 3600,
                                          enrolmentAddress: "", logger: logger)
        let server = CoordinatorServer(config: config, driver: driver, authority: authority, logger: logger)
        let (addressStream, addressContinuation) = AsyncStream.makeStream(of: String.self)
        let (stopStream, stopContinuation) = AsyncStream.makeStream(of: Void.self)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.run(until: { for await _ in stopStream { return } },
                                     onListening: { addressContinuation.yield($0) })
            }
            var iterator = addressStream.makeAsyncIterator()
            guard let text = await iterator.next() else { throw TestFailure("the coordinator did not start listening") }
            let address = try HostPort(parsing: text)
            var clients = [String: GRPCClient<HTTP2ClientTransport.Posix>]()
            for (id, dir) in identities {
                let client = GRPCClient(transport: try HTTP2ClientTransport.Posix(
                    target: .ipv4(address: address.host, port: address.port), transportSecurity: ClientTLS.mutual(dir)))
                clients[id] = client
                group.addTask { try await client.runConnections() }
            }
            let result: T
            do {
                result = try await body(driver, runID, clients)
            } catch {
                for client in clients.values { client.beginGracefulShutdown() }
                stopContinuation.finish()
                throw error
            }
            for client in clients.values { client.beginGracefulShutdown() }
            stopContinuation.yield()
            stopContinuation.finish()
            try await group.waitForAll()
            return result
        }
    }
}
