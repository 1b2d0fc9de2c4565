import ArgumentParser
import ConclaveConfig
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveAgent
import ConclaveAdminClient
import ConclaveIdentity
import Foundation
import GRPCCore
import X509
import ConclaveSupport
import ConclaveTensor
import Logging
import ServiceLifecycle
import UnixSignals

/// `conclave-client --config silo.toml`: the agent inside a silo; `conclave-client enroll` joins it.
@main
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave-client",
        abstract: "Runs a Conclave silo agent: dials the coordinator, trains on local data when a round asks.",
        subcommands: [Run.self, Enroll.self, Budget.self], defaultSubcommand: Run.self)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the agent (the default).")

    @Option(name: .long, help: "Path to silo.toml.")
    var config: String

    func run() async throws {
        // Local training runs on the best OpenBLAS kernels for this CPU (may re-execute once).
        let kernels = BLASKernel.ensureBestKernels()
        let settings: SiloConfig
        do { settings = try SiloConfig.load(path: config) } catch {
            throw ValidationError(error.message)
        }
        LogfmtHandler.bootstrap(level: settings.logLevel)
        var logger = Logger(label: "client")
        logger[metadataKey: "silo"] = "\(settings.siloID)"
        logger.info("BLAS kernels", metadata: ["blas": "\(kernels)", "threads": "\(settings.threads)",
                                              "dp_noise_kernel": "\(NoiseKernel.best.rawValue)"])
        if let note = settings.threadsNote { logger.warning("thread count adjusted", metadata: ["reason": "\(note)"]) }
        BLAS.setThreads(settings.threads)
        let data = try settings.data.load(classCount: settings.classCount)
        logger.info("data loaded", metadata: ["examples": "\(data.count)", "features": "\(data.featureCount)",
                                              "source": "\(settings.data.description)"])
        if !settings.insecure { try? IdentityDirectory(path: settings.tlsIdentityPath).repair() }
        if !settings.insecure && !IdentityDirectory(path: settings.tlsIdentityPath).exists {
            logger.critical("silo is not enrolled", metadata: [
                "error": "no certificate in \(settings.tlsIdentityPath); run 'conclave-client enroll --config \(config) --bundle FILE' with the bundle from 'conclave silo add \(settings.siloID)' (or set [silo] insecure = true for a plaintext coordinator)"])
            throw ExitCode.failure
        }
        if settings.insecure { logger.warning("PLAINTEXT: insecure = true; the coordinator is not authenticated and the link is not encrypted") }
        let identity = try IdentityKeyFile.loadOrCreate(path: settings.identityKeyPath)
        logger.info(identity.created ? "identity key created" : "identity key loaded",
                    metadata: ["path": "\(settings.identityKeyPath)", "public_key": "\(identity.key.publicKey.hexString)"])
        let agent: AgentService
        do { agent = AgentService(agent: try Agent(config: settings, data: data, identity: identity.key, logger: logger)) } catch {
            throw ValidationError(error.message)
        }
        let group = ServiceGroup(configuration: .init(
            services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("agent stopped")
    }
}

struct AgentService: Service {
    let agent: Agent

    func run() async throws {
        await cancelWhenGracefulShutdown { await agent.run() }
    }
}



/// `conclave-client enroll --config silo.toml --bundle FILE`: the agent makes its own TLS key, proves it holds
/// the silo's Ed25519 identity key, and stores the certificate the coordinator issues. No key leaves the silo.
struct Enroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enroll", abstract: "Enrol this silo with a bundle from 'conclave silo add'.")

    @Option(name: .long, help: "Path to silo.toml.") var config: String
    @Option(name: .long, help: "The enrolment bundle file.") var bundle: String

    func run() async throws {
        let settings: SiloConfig
        do { settings = try SiloConfig.load(path: config) } catch { throw ValidationError(error.message) }
        let b: EnrolmentBundle
        do { b = try EnrolmentBundle.read(path: bundle) } catch { throw ValidationError(error.message) }
        guard b.role == "silo", b.name == settings.siloID else {
            throw ValidationError("\(bundle) enrols \(b.role) '\(b.name)', but \(config) is silo '\(settings.siloID)'")
        }
        let coordinator = "\(settings.coordinator.host):\(settings.coordinator.port)"
        if b.coordinator != coordinator {
            FileHandle.standardError.write(Data("note: the bundle names coordinator \(b.coordinator); \(config) dials \(coordinator)\n".utf8))
        }
        let key = try IdentityKeyFile.loadOrCreate(path: settings.identityKeyPath).key
        do {
            let (identity, certificate) = try await EnrolmentClient.enroll(
                bundle: b, into: IdentityDirectory(path: settings.tlsIdentityPath),
                prover: { statement in (key.publicKey, key.sign(statement)) })
            print("enrolled as \(identity.uri); certificate \(certificate.serialHex) valid until \(certificate.notValidAfter); identity in \(settings.tlsIdentityPath)")
        } catch let error as RPCError {
            FileHandle.standardError.write(Data("error: enrolment refused: \(error.message)\n".utf8))
            throw ExitCode.failure
        } catch let error as IdentityError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
    }
}
