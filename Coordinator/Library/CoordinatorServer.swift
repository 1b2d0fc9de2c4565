public import ConclaveConfig
import ConclaveSupport
import ConclaveWireConversions
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
public import Logging

/// A reason the daemon cannot start, naming what to fix.
public struct CoordinatorStartError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The coordinator daemon's network edge: serves the Federation and Admin services over gRPC and ticks the
/// run driver's deadlines. The single place where transport security is chosen (plaintext today; mutual
/// TLS arrives with silo identities).
public struct CoordinatorServer: Sendable {
    public let config: CoordinatorConfig
    public let driver: RunDriver
    let logger: Logger

    public init(config: CoordinatorConfig, driver: RunDriver, logger: Logger) {
        self.config = config
        self.driver = driver
        self.logger = logger
    }

    /// Serves until `stop` returns, then abandons the round in flight and drains open RPCs.
    /// `onListening` receives the bound address (host:port).
    public func run(until stop: @escaping @Sendable () async -> Void,
                    onListening: @escaping @Sendable (String) async -> Void = { _ in }) async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: config.listen.host, port: config.listen.port),
            transportSecurity: .plaintext)
        await driver.resume()
        let services: [any RegistrableRPCService] = [
            FederationService(driver: driver, logger: logger, idleTimeout: .seconds(config.streamIdleSeconds)),
            AdminService(driver: driver),
        ]
        try await withGRPCServer(transport: transport, services: services) { server in
            let listening: SocketAddress.IPv4?
            do { listening = try await transport.listeningAddress.ipv4 } catch {
                // The transport's own error ("serverIsStopped") does not say which address failed.
                throw CoordinatorStartError(
                    "cannot listen on \(config.listen.host):\(config.listen.port): the address is in use or not available here (\(error))")
            }
            guard let address = listening else {
                throw RPCError(code: .internalError, message: "server is not listening on IPv4")
            }
            let bound = "\(address.host):\(address.port)"
            if let file = config.addressFile {
                try Data(bound.utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
            }
            var metricsServer: MetricsServer?
            if let listen = config.metricsListen {
                metricsServer = try await MetricsServer(host: listen.host, port: listen.port, metrics: driver.metrics)
                logger.info("metrics served", metadata: ["address": "\(metricsServer!.address)", "path": "/metrics"])
                if let file = config.addressFile {
                    try Data(metricsServer!.address.utf8).write(to: URL(fileURLWithPath: file + ".metrics"), options: .atomic)
                }
            }
            logger.info("coordinator listening", metadata: ["address": "\(bound)", "database": "\(config.database)"])
            await onListening(bound)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        await driver.tick()
                        try? await Task.sleep(for: .milliseconds(250))
                    }
                }
                await stop()
                group.cancelAll()
            }
            await driver.shutdown()
            await metricsServer?.close()
            logger.info("coordinator stopping")
        }
    }
}
