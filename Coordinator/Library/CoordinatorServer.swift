public import ConclaveConfig
import ConclaveIdentity
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

/// The coordinator daemon's network edge: serves Federation, Admin and Identity over gRPC — mutual TLS when
/// an identity authority is given (plus the enrolment listener), plaintext otherwise — and ticks the run
/// driver's deadlines and the server certificate's renewal. The single place transport security is chosen.
public struct CoordinatorServer: Sendable {
    public let config: CoordinatorConfig
    public let driver: RunDriver
    public let authority: IdentityAuthority?
    let logger: Logger

    public init(config: CoordinatorConfig, driver: RunDriver, authority: IdentityAuthority? = nil, logger: Logger) {
        self.config = config
        self.driver = driver
        self.authority = authority
        self.logger = logger
    }

    /// Serves until `stop` returns, then abandons the round in flight and drains open RPCs.
    /// `onListening` receives the bound address (host:port).
    public func run(until stop: @escaping @Sendable () async -> Void,
                    onListening: @escaping @Sendable (String) async -> Void = { _ in }) async throws {
        await driver.resume()
        var services: [any RegistrableRPCService] = [
            FederationService(driver: driver, logger: logger, idleTimeout: .seconds(config.streamIdleSeconds),
                              mutualTLS: authority != nil),
            AdminService(driver: driver),
            BudgetService(driver: driver),
            WitnessService(driver: driver),
        ]
        guard let authority, let tls = config.tls else {
            logger.warning("PLAINTEXT: no TLS, no authentication — anyone who reaches this port can act as any silo or operator (insecure = true)")
            let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: config.listen.host, port: config.listen.port),
                                                       transportSecurity: .plaintext)
            try await serve(transport: transport, services: services, interceptors: [], enrolment: nil, onListening: onListening, until: stop)
            return
        }
        services.append(IdentityService(authority: authority))
        let pki = authority.pki
        let caPEM = Array(pki.caPEM.utf8)
        let mainSecurity = try HTTP2ServerTransport.Posix.TransportSecurity.mTLS(certificateReloader: pki.server) { t in
            t.trustRoots = .certificates([.bytes(caPEM, format: .pem)])  // never the system roots
            t.clientCertificateVerification = .noHostnameVerification
            t.customVerificationCallback = { certificates, promise in pki.trust.verify(certificates, promise) }
        }
        let mainConfig = HTTP2ServerTransport.Posix.Config.defaults { c in
            c.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in authority.connections.install(on: channel) }
        }
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: config.listen.host, port: config.listen.port),
                                                   transportSecurity: mainSecurity, config: mainConfig)
        let enrolSecurity = try HTTP2ServerTransport.Posix.TransportSecurity.tls(certificateReloader: pki.server)
        let enrolConfig = HTTP2ServerTransport.Posix.Config.defaults { c in
            c.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in RequireTLS13.install(on: channel) }
        }
        let enrolTransport = HTTP2ServerTransport.Posix(address: .ipv4(host: tls.enrolListen.host, port: tls.enrolListen.port),
                                                        transportSecurity: enrolSecurity, config: enrolConfig)
        try await withGRPCServer(transport: enrolTransport, services: [EnrollmentService(authority: authority)]) { _ in
            let enrolAddress: String
            do {
                guard let a = try await enrolTransport.listeningAddress.ipv4 else { throw CoordinatorStartError("not IPv4") }
                enrolAddress = "\(a.host):\(a.port)"
            } catch {
                throw CoordinatorStartError("cannot listen for enrolment on \(tls.enrolListen.host):\(tls.enrolListen.port): the address is in use or not available here (\(error))")
            }
            authority.setEnrolmentAddress(enrolAddress)
            try await serve(transport: transport, services: services,
                            interceptors: [AuthorizationInterceptor(trust: pki.trust, contacts: authority.contacts)],
                            enrolment: enrolAddress, onListening: onListening, until: stop)
        }
    }

    private func serve(transport: HTTP2ServerTransport.Posix, services: [any RegistrableRPCService],
                       interceptors: [any ServerInterceptor], enrolment: String?,
                       onListening: @escaping @Sendable (String) async -> Void,
                       until stop: @escaping @Sendable () async -> Void) async throws {
        try await withGRPCServer(transport: transport, services: services, interceptors: interceptors) { server in
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
                if let enrolment { try Data(enrolment.utf8).write(to: URL(fileURLWithPath: file + ".enrol"), options: .atomic) }
            }
            var metricsServer: MetricsServer?
            if let listen = config.metricsListen {
                metricsServer = try await MetricsServer(host: listen.host, port: listen.port, metrics: driver.metrics)
                logger.info("metrics served", metadata: ["address": "\(metricsServer!.address)", "path": "/metrics"])
                if let file = config.addressFile {
                    try Data(metricsServer!.address.utf8).write(to: URL(fileURLWithPath: file + ".metrics"), options: .atomic)
                }
            }
            var meta: Logger.Metadata = ["address": "\(bound)", "database": "\(config.database)",
                                         "transport": "\(enrolment == nil ? "plaintext" : "mutual TLS")"]
            if let enrolment, let authority {
                meta["enrolment"] = "\(enrolment)"
                meta["federation"] = "\(authority.pki.ca.federation)"
            }
            logger.info("coordinator listening", metadata: meta)
            await onListening(bound)
            let authority = self.authority
            let lifetime = config.tls?.certificateSeconds ?? 0
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var ticks = 0
                    while !Task.isCancelled {
                        await driver.tick()
                        ticks += 1
                        if let authority, ticks % 20 == 0 {
                            authority.renewServerCertificateIfDue(lifetime: lifetime)
                            authority.closeExpiredConnections()
                        }
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
