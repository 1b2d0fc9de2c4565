import ArgumentParser
import ConclaveConfig
import ConclaveCoordinator
import ConclaveFederation
import ConclaveIdentity
import ConclaveSupport
import ConclaveStorage
import ConclaveTensor
import Logging
import ServiceLifecycle
import UnixSignals

/// `conclave-coordinator --config coordinator.toml`: the federation's daemon.
@main
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave-coordinator",
        abstract: "Runs the Conclave coordinator: hands out rounds, aggregates updates, keeps state in SQLite.",
        subcommands: [Serve.self, DriverBench.self, TLSBench.self], defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the federation (the default).")

    @Option(name: .long, help: "Path to coordinator.toml.")
    var config: String

    func run() async throws {
        // Evaluation and aggregation run on the best OpenBLAS kernels for this CPU (may re-execute once).
        let kernels = BLASKernel.ensureBestKernels()
        let settings: CoordinatorConfig
        do { settings = try CoordinatorConfig.load(path: config) } catch {
            throw ValidationError(error.message)
        }
        LogfmtHandler.bootstrap(level: settings.logLevel)
        let logger = Logger(label: "coordinator")
        logger.info("BLAS kernels", metadata: ["blas": "\(kernels)"])
        let driver: RunDriver
        do {
            driver = try RunDriver(config: settings, logger: logger)
            // Exits here, naming the path, when the database or the checkpoint directory cannot be written.
            try await driver.prepare()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\((error as? StorageError)?.message ?? (error as? FederationError)?.message ?? "\(error)")"])
            throw ExitCode.failure
        }
        var authority: IdentityAuthority?
        if let tls = settings.tls {
            do {
                let revoked = try driver.store.revocations()
                let pki = try CoordinatorPKI(directory: tls.directory, revokedSerials: revoked.serials,
                                             revokedIdentities: revoked.identities)
                authority = IdentityAuthority(pki: pki, store: driver.store, certificateSeconds: tls.certificateSeconds,
                                              tokenSeconds: tls.tokenSeconds,
                                              enrolmentAddress: "\(tls.enrolListen.host):\(tls.enrolListen.port)", logger: logger,
                                              siloRevoked: { [driver] silo in await driver.siloRevoked(silo) })
                authority?.recordLocalOperators()
            } catch let error as IdentityError {
                logger.critical("cannot start", metadata: ["error": "\(error.message)"])
                throw ExitCode.failure
            } catch {
                logger.critical("cannot start", metadata: ["error": "\(error)"])
                throw ExitCode.failure
            }
        }
        let daemon = CoordinatorService(server: CoordinatorServer(config: settings, driver: driver, authority: authority,
                                                                  logger: logger))
        let group = ServiceGroup(configuration: .init(
            services: [daemon], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch {
            logger.critical("cannot serve", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}

/// The ten-line `Service` wrapper that grpc-swift-extras would provide.
struct CoordinatorService: Service {
    let server: CoordinatorServer

    func run() async throws {
        try await server.run(until: { try? await gracefulShutdown() })
    }
}


