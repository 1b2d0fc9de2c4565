public import ConclaveSecAgg
import ConclaveCrypto
import ConclavePrivacy

/// The coordinator's side of one secure round: `SecAggServer` driven through its phases by silo messages,
/// silos leaving, and a deadline per phase. A phase closes as soon as every silo still connected has answered
/// (or at its deadline); each close yields what to tell the silos that go on. Pure: the runtime delivers.
public struct SecureRound: Sendable {
    /// What each selected silo was told, by silo id.
    public let tasks: [String: SecureTask]
    /// Fewest silos that may carry the round past each phase up to masked-input collection (the run's
    /// `min_silos`); the Shamir threshold applies on top.
    public let minimum: Int
    public let phaseTimeout: Double
    private var server: SecAggServer
    /// Training statistics reported with each silo's keys.
    public private(set) var stats: [String: RoundStateMachine.Contribution] = [:]
    private var expected: Set<String>
    private var answered: Set<String> = []
    /// Silos whose connection ended this round: never waited for again.
    public private(set) var gone: Set<String> = []
    public private(set) var phaseDeadline: Double
    /// Every phase reply each silo was sent so far, in order: what a silo resuming the attempt after a
    /// coordinator restart must replay on its session.
    public private(set) var repliesOwed: [String: [Reply]] = [:]
    public private(set) var outcome: Step?

    public enum Message: Sendable {
        case keys(KeyAdvertisement, RoundStateMachine.Contribution)
        case shares([EncryptedShare])
        case maskedInput(context: [UInt8], [UInt32])
        case survivorSignature([UInt8])
        case unmasking(UnmaskingResponse)

        var name: String {
            switch self {
            case .keys: "key advertisement"
            case .shares: "key shares"
            case .maskedInput: "masked input"
            case .survivorSignature: "survivor-list signature"
            case .unmasking: "unmasking shares"
            }
        }
    }

    /// What a silo receives when a phase closes.
    public enum Reply: Sendable, Equatable {
        case keys([KeyAdvertisement])
        case shares([EncryptedShare])
        case survivors([String])
        case signatures([String: [UInt8]])
    }

    public enum Step: Sendable {
        case pending
        case advanced([String: Reply])
        case finished(sum: [UInt32], survivors: [String])
        case aborted(String)
    }

    public init(tasks: [String: SecureTask], minimum: Int, phaseTimeout: Double, advertisingDeadline: Double)
        throws(FederationError) {
        guard let any = tasks.values.first else { throw FederationError(.failedPrecondition, "a secure round needs silos") }
        let parameters = try any.parameters()
        self.tasks = tasks
        self.minimum = minimum
        self.phaseTimeout = phaseTimeout
        self.server = SecAggServer(parameters: parameters, directory: any.directory)
        self.server.threads = 2
        self.expected = Set(tasks.keys)
        self.phaseDeadline = advertisingDeadline
    }

    public var phase: SecAggServer.Phase { server.phase }
    /// 32-bit words in each masked input (the parameter count, or twice it for two-word encodings).
    public var maskedLength: Int { server.parameters.length }
    public var threshold: Int { server.parameters.threshold }

    /// Whether the silo's message for the phase now open is on record (a resuming silo then only waits).
    public func hasAnswered(_ silo: String) -> Bool { answered.contains(silo) }

    /// After a restart: the silos get a fresh phase deadline to reconnect in.
    public mutating func restartPhaseClock(now: Double) {
        phaseDeadline = now + phaseTimeout
    }

    /// Whether the silo has sent its keys (it trained and joined the protocol).
    public func joined(_ silo: String) -> Bool { stats[silo] != nil }

    public mutating func receive(_ message: Message, from silo: String, now: Double) throws(FederationError) -> Step {
        guard tasks[silo] != nil else {
            throw FederationError(.failedPrecondition, "silo '\(silo)' was not selected for this round")
        }
        guard outcome == nil else { throw FederationError(.failedPrecondition, "the secure round has ended") }
        guard !gone.contains(silo) else {
            throw FederationError(.failedPrecondition, "silo '\(silo)' left this round; it can join the next one")
        }
        guard expected.contains(silo), !answered.contains(silo) else {
            throw FederationError(.failedPrecondition,
                "\(message.name) from silo '\(silo)' refused: it is not expected in phase \(server.phase) (answered already, or dropped from the round)")
        }
        do throws(SecAggError) {
            switch (server.phase, message) {
            case (.advertising, .keys(let ad, let contribution)):
                guard ad.silo == silo else { throw SecAggError("keys from '\(silo)' are labelled '\(ad.silo)'") }
                try server.receiveKeys(ad)
                stats[silo] = contribution
            case (.sharing, .shares(let shares)):
                try server.receiveShares(from: silo, shares)
            case (.collecting, .maskedInput(let context, let vector)):
                try server.receiveMaskedInput(from: silo, context: context, vector)
            case (.checking, .survivorSignature(let signature)):
                try server.receiveSurvivorSignature(from: silo, signature)
            case (.unmasking, .unmasking(let response)):
                guard response.silo == silo else { throw SecAggError("unmasking shares from '\(silo)' are labelled '\(response.silo)'") }
                try server.receiveUnmasking(response)
            default:
                throw SecAggError("\(message.name) from silo '\(silo)' is out of turn: the round is in phase \(server.phase)")
            }
        } catch {
            throw FederationError(.invalidArgument, error.message)
        }
        answered.insert(silo)
        return isPhaseComplete ? closePhase(now: now) : .pending
    }

    /// The silo's connection ended: it is not waited for again this round. Only silos that joined this
    /// attempt can leave it (a stream from an earlier attempt of the same round says nothing about this one);
    /// a selected silo that never joins is waited for until the advertising deadline (it may be training).
    public mutating func leave(_ silo: String, now: Double) -> Step {
        guard joined(silo), outcome == nil, !gone.contains(silo) else { return .pending }
        gone.insert(silo)
        return isPhaseComplete ? closePhase(now: now) : .pending
    }

    /// The silo's agent declined the round before joining it: it is not waited for (as if it had dropped
    /// out before advertising its keys).
    public mutating func decline(_ silo: String, now: Double) -> Step {
        guard tasks[silo] != nil, !joined(silo), outcome == nil, !gone.contains(silo) else { return .pending }
        gone.insert(silo)
        return isPhaseComplete ? closePhase(now: now) : .pending
    }

    /// Closes the phase when its deadline has passed, with whoever answered.
    public mutating func tick(now: Double) -> Step {
        guard outcome == nil, now >= phaseDeadline else { return .pending }
        return closePhase(now: now)
    }

    private var isPhaseComplete: Bool { expected.subtracting(gone).isSubset(of: answered) }

    private mutating func closePhase(now: Double) -> Step {
        var replies = [String: Reply]()
        do throws(SecAggError) {
            switch server.phase {
            case .advertising:
                let keys = try server.endAdvertising()
                try requireMinimum(keys.count, "advertised keys")
                for ad in keys { replies[ad.silo] = .keys(server.advertisements(for: ad.silo)) }
            case .sharing:
                let inbox = try server.endSharing()
                try requireMinimum(inbox.count, "shared keys")
                for (silo, shares) in inbox { replies[silo] = .shares(shares) }
            case .collecting:
                let survivors = try server.endCollection()
                try requireMinimum(survivors.count, "sent masked inputs")
                for silo in survivors { replies[silo] = .survivors(survivors) }
            case .checking:
                let signatures = try server.endConsistencyCheck()
                for silo in signatures.keys { replies[silo] = .signatures(signatures) }
            case .unmasking:
                let result = try server.finish()
                outcome = .finished(sum: result.sum, survivors: result.survivors)
                return outcome!
            case .finished, .aborted:
                return outcome ?? .pending
            }
        } catch {
            outcome = .aborted(error.message)
            return outcome!
        }
        expected = Set(replies.keys)
        answered = []
        phaseDeadline = now + phaseTimeout
        // Everyone who would go on has already left: nothing will arrive, close the next phase now.
        if expected.isSubset(of: gone) { return closePhase(now: now) }
        for (silo, reply) in replies { repliesOwed[silo, default: []].append(reply) }
        return .advanced(replies)
    }

    private mutating func requireMinimum(_ count: Int, _ what: String) throws(SecAggError) {
        guard count >= minimum else {
            throw SecAggError("round aborted: only \(count) silos \(what), fewer than min_silos \(minimum)")
        }
    }

    /// Σ wₖ·clip(Δₖ) decoded — noised by `central` (central DP, from `rng`) — and divided by the survivors'
    /// total weight: the weighted FedAvg mean. With clip bits, also the (noisy) count of survivors within the
    /// clip norm.
    public func mean(of sum: [UInt32], survivors: [String], central: CentralMechanism? = nil,
                     using rng: inout some RandomNumberGenerator) throws(FederationError) -> (mean: [Float], count: Double?) {
        guard let any = tasks.values.first else { return ([], nil) }
        let totalWeight = survivors.reduce(0.0) { $0 + (tasks[$1]?.weight ?? 0) }
        guard totalWeight > 0 else { throw FederationError(.failedPrecondition, "survivors carry no weight") }
        if let distributed = any.distributed {
            // Distributed DP: the sum already holds every survivor's noise share.
            let scale = 1 / totalWeight
            return (distributed.decode(sum: sum, rotation: any.rotation(distributed)).map { Float($0 * scale) }, nil)
        }
        let encoding = try any.encoding()
        let updateLength = encoding.encodedLength(any.parameterCount)
        var total = encoding.decode(sum: Array(sum[0..<updateLength]))
        // Each bit travelled as C or 0: the decoded value over C counts the silos within the norm.
        var bits = any.clipBit ? encoding.decode(sum: Array(sum[updateLength...])).map { Float(Double($0) / any.clipNorm) } : []
        if let central { try central.noise(sum: &total, count: &bits, using: &rng) }
        let scale = Float(1 / totalWeight)
        return (total.map { $0 * scale }, bits.first.map(Double.init))
    }
}
