public import ConclaveCrypto
import ConclaveSecAgg

/// The silo's side of one secure round: its encoded update and a `SecAggSilo`, turning each reply the
/// coordinator relays into the next message to send. Shared by the agent and the in-process simulation.
public struct SecureSiloSession: Sendable {
    public let task: SecureTask
    /// The clipped, weighted, quantized update this silo contributes.
    public let input: [UInt32]
    private var silo: SecAggSilo

    public init(siloID: String, identity: Ed25519KeyPair, task: SecureTask, update: [Float], threads: Int = 1)
        throws(FederationError) {
        guard task.members.contains(siloID) else {
            throw FederationError(.invalidArgument, "the secure task does not list this silo ('\(siloID)') as a member")
        }
        guard task.directory[siloID] == identity.publicKey else {
            throw FederationError(.invalidArgument,
                "the coordinator lists a different identity key for '\(siloID)' than this silo's own")
        }
        self.task = task
        self.input = try task.encode(update)
        self.silo = SecAggSilo(id: siloID, identity: identity, directory: task.directory, parameters: try task.parameters())
        self.silo.threads = threads
    }

    /// The first message: this round's fresh keys, signed, with the silo's training statistics.
    public mutating func start(_ contribution: RoundStateMachine.Contribution) -> SecureRound.Message {
        .keys(silo.advertiseKeys(), contribution)
    }

    /// The answer to what the coordinator relayed when a phase closed.
    public mutating func respond(to reply: SecureRound.Reply) throws(FederationError) -> SecureRound.Message {
        do throws(SecAggError) {
            switch reply {
            case .keys(let ads): return .shares(try silo.shareKeys(ads))
            case .shares(let inbox):
                return .maskedInput(context: task.context, try silo.maskInput(input, received: inbox))
            case .survivors(let list): return .survivorSignature(try silo.signSurvivors(list))
            case .signatures(let signatures): return .unmasking(try silo.unmask(signatures: signatures))
            }
        } catch {
            throw FederationError(.invalidArgument, error.message)
        }
    }
}
