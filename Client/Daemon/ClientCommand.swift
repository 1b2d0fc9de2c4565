import ArgumentParser
import ConclaveConfig
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclaveAgent
import ConclaveSupport
import ConclaveTensor
import Logging
import ServiceLifecycle
import UnixSignals

/// `conclave-client --config silo.toml`: the agent inside a silo.
@main
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave-client",
        abstract: "Runs a Conclave silo agent: dials the coordinator, trains on local data when a round asks.")

    @Option(name: .long, help: "Path to silo.toml.")
    var config: String

    func run() async throws {
        let settings: SiloConfig
        do { settings = try SiloConfig.load(path: config) } catch {
            throw ValidationError(error.message)
        }
        LogfmtHandler.bootstrap(level: settings.logLevel)
        var logger = Logger(label: "client")
        logger[metadataKey: "silo"] = "\(settings.siloID)"
        BLAS.setThreads(settings.threads)
        let data = try settings.data.load(classCount: settings.classCount)
        logger.info("data loaded", metadata: ["examples": "\(data.count)", "features": "\(data.featureCount)",
                                              "source": "\(settings.data.description)"])
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


