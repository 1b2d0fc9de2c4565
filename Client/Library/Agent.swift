public import ConclaveConfig
public import ConclaveCrypto
public import ConclaveFederation
public import ConclaveLearning
import ConclaveWire
import ConclaveAdminClient
import ConclaveIdentity
import Synchronization
import X509
import ConclaveSupport
import ConclaveWireConversions
import Foundation
import ConclavePrivacy
import SwiftProtobuf
import GRPCCore
import GRPCNIOTransportHTTP2
public import Logging

/// The silo agent: dials the coordinator (never listens), asks for work, trains on its own data when a round
/// asks, and sends back the update. Reconnects with exponential backoff while the coordinator is away.
public struct Agent: Sendable {
    public let config: SiloConfig
    public let data: Dataset
    /// The silo's long-term identity: signs its secure-aggregation keys and survivor lists.
    public let identity: Ed25519KeyPair
    /// What every release has spent of this silo's budgets (its own signed ledger, in SQLite).
    let ledger: SiloLedger
    /// Rounds this silo already sent a masked input for (never masked into a second sum).
    let journal: MaskedInputJournal
    let logger: Logger
    /// When renewal last failed: the agent keeps its connection (and certificate) for a minute before trying again.
    let renewalFailedAt = SharedTime()

    public init(config: SiloConfig, data: Dataset, identity: Ed25519KeyPair, logger: Logger) throws(FederationError) {
        self.config = config
        self.data = data
        self.identity = identity
        self.ledger = try SiloLedger(path: config.privacyLedgerPath, maxEpsilon: config.maxEpsilon, siloID: config.siloID,
                                     identity: identity)
        self.journal = try MaskedInputJournal(path: config.maskedJournalPath)
        self.logger = logger
    }

    var silo: SiloInfo {
        SiloInfo(id: config.siloID, examples: UInt64(data.count), features: data.featureCount,
                 classes: config.classCount ?? data.classCount, dataset: config.datasetName,
                 identityKey: identity.publicKey)
    }

    /// Runs until the task is cancelled (graceful shutdown).
    public func run() async {
        var backoff = config.backoffInitialSeconds
        while !Task.isCancelled {
            do {
                await renewIfDue()
                let transport = try HTTP2ClientTransport.Posix(
                    target: .ipv4(address: config.coordinator.host, port: config.coordinator.port),
                    transportSecurity: config.insecure ? .plaintext : ClientTLS.mutual(IdentityDirectory(path: config.tlsIdentityPath)),
                    // Fail fast rather than queue calls while the connection is down (refused certificate,
                    // coordinator restarting): the agent's own loop backs off, logs and renews.
                    serviceConfig: ServiceConfig(methodConfig: [MethodConfig(names: [.init(service: "")], waitForReady: false)]))
                try await withGRPCClient(transport: transport) { client in
                    let federation = Conclave_V1_Federation.Client(wrapping: client)
                    let witness = Conclave_V1_Witness.Client(wrapping: client)
                    try await serve(federation, witness: witness, resetBackoff: { backoff = config.backoffInitialSeconds })
                }
            } catch is CancellationError {
                return
            } catch let error as RPCError where Self.isFatal(error) {
                // The coordinator refused this silo: retrying at full speed will not help, so back off hard.
                logger.error("coordinator refused this silo", metadata: ["error": "\(error.message)"])
                backoff = config.backoffMaxSeconds
            } catch {
                var meta: Logger.Metadata = ["error": "\(error)", "retry_seconds": "\(backoff)"]
                if !config.insecure {
                    // In TLS 1.3 a refused client certificate shows only as a closed connection.
                    meta["hint"] = "if this persists, the coordinator may refuse this silo's certificate (revoked, expired, another federation)"
                }
                logger.warning("coordinator unreachable; retrying", metadata: meta)
            }
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, config.backoffMaxSeconds)
        }
    }

    /// After two-thirds of its certificate's lifetime the agent renews it with a fresh key, with no operator
    /// step; the next connection uses the new files. A failure is logged and retried at the next connection.
    func renewIfDue(now: Date = Date()) async {
        guard !config.insecure else { return }
        let directory = IdentityDirectory(path: config.tlsIdentityPath)
        do { try directory.repair() } catch {
            logger.error("cannot complete an interrupted certificate replacement", metadata: ["error": "\(error.message)"])
        }
        guard directory.needsRenewal(now: now), renewalFailedAt.withLock({ now.timeIntervalSince1970 - $0 > 60 }) else { return }
        do {
            let certificate = try await EnrolmentClient.renew(address: config.coordinator, directory: directory)
            logger.notice("certificate renewed", metadata: ["serial": "\(certificate.serialHex)",
                                                            "not_after": "\(certificate.notValidAfter)"])
        } catch {
            renewalFailedAt.withLock { $0 = now.timeIntervalSince1970 }
            logger.warning("cannot renew the certificate; retrying in a minute", metadata: ["error": "\(error)"])
        }
    }

    static func isFatal(_ error: RPCError) -> Bool {
        [.permissionDenied, .failedPrecondition, .invalidArgument].contains(error.code)
    }

    private func serve(_ federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>,
                       witness: Conclave_V1_Witness.Client<HTTP2ClientTransport.Posix>,
                       resetBackoff: () -> Void) async throws {
        var lastWaitReason = ""
        var lastWitnessed = 0.0
        while !Task.isCancelled {
            // Renewal is due: leave this connection; the next one renews first and presents the new certificate.
            if !config.insecure, renewalFailedAt.withLock({ Date().timeIntervalSince1970 - $0 > 60 }),
               IdentityDirectory(path: config.tlsIdentityPath).needsRenewal() { return }
            let task = try await fetch(federation)
            resetBackoff()
            switch task {
            case .wait(let reason, let ms):
                if reason != lastWaitReason { logger.info("waiting", metadata: ["reason": "\(reason)"]) }
                // Co-sign what the ledger recorded since (the last round's charges) while there is nothing to do.
                if reason != lastWaitReason || Date().timeIntervalSince1970 - lastWitnessed > 10 {
                    await witnessLedger(witness)
                    lastWitnessed = Date().timeIntervalSince1970
                }
                lastWaitReason = reason
                try await Task.sleep(for: .milliseconds(Int(ms)))
            case .train(let header, let weights):
                lastWaitReason = ""
                // Adopt the budgets' newest registrations and amendments before pricing the round.
                await witnessLedger(witness)
                lastWitnessed = Date().timeIntervalSince1970
                try await train(header, weights: weights, federation: federation)
            }
        }
    }

    /// One witness step; a failure is logged (and the silo's own filter still guards every release).
    private func witnessLedger(_ witness: Conclave_V1_Witness.Client<HTTP2ClientTransport.Posix>) async {
        do {
            let result = try await ledger.witness(witness)
            if result.cosigned > 0 {
                logger.info("privacy ledger co-signed", metadata: ["size": "\(result.size)", "entries": "\(result.cosigned)"])
            }
        } catch let error as RPCError where error.code == .unimplemented {
            return  // a coordinator without a ledger
        } catch let error as FederationError {
            logger.error("privacy ledger not co-signed", metadata: ["error": "\(error.message)"])
        } catch {
            logger.warning("privacy ledger not co-signed", metadata: ["error": "\(error)"])
        }
    }

    private enum Fetched: Sendable {
        case wait(String, UInt32)
        case train(Conclave_V1_TrainTask, [Float])
    }

    private func fetch(_ federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>) async throws -> Fetched {
        let request = Conclave_V1_FetchTaskRequest.with { $0.silo = silo.proto }
        return try await federation.fetchTask(request) { response in
            var header: Conclave_V1_TaskHeader?
            var assembler: WeightsAssembler?
            var train: Conclave_V1_TrainTask?
            for try await chunk in response.messages {
                switch chunk.kind {
                case .header(let h):
                    header = h
                    if case .train(let t) = h.action {
                        let spec = try ModelSpec(proto: t.model)
                        assembler = try WeightsAssembler(total: t.totalValues, expected: spec.parameterCount,
                                                         what: "global weights for round \(t.round)")
                        train = t
                    }
                case .weights(let w):
                    guard assembler != nil else { throw FederationError(.invalidArgument, "weights before the task header") }
                    try assembler!.add(w)
                case .none:
                    continue
                }
            }
            switch header?.action {
            case .wait(let w): return .wait(w.reason, max(50, w.retryAfterMs))
            case .train:
                let weights = try assembler!.finish()
                guard SHA256.hex(floats: weights) == train!.weightsSha256 else {
                    throw FederationError(.invalidArgument, "global weights for round \(train!.round) fail their SHA-256 check")
                }
                return .train(train!, weights)
            case .none: throw FederationError(.invalidArgument, "task stream ended without a header")
            }
        }
    }

    private func train(_ task: Conclave_V1_TrainTask, weights: [Float],
                       federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>) async throws {
        let spec = try ModelSpec(proto: task.model)
        let training = try TrainingConfig(proto: task.training)
        // The silo's own policy and records decide, before any training: the coordinator's task is only a request.
        let shape = task.hasSecure ? (threshold: Int(task.secure.threshold), members: task.secure.members.count) : nil
        if let (reason, detail) = config.policy.refusal(secure: shape, privacyMode: task.privacyMode) {
            try await decline(task, reason: reason, detail: detail, federation: federation)
            return
        }
        if task.hasSecure, journal.hasSent(run: task.runID, round: Int(task.round)) {
            try await decline(task, reason: .alreadyMasked,
                              detail: "this silo already sent a masked input for round \(task.round) of run \(task.runID); it sits out the retried attempt so its update is never in two sums",
                              federation: federation)
            return
        }
        logger.info("training", metadata: ["run": "\(task.runID)", "round": "\(task.round)",
                                           "model": "\(spec.summary)", "examples": "\(data.count)"])
        var plan: RecordPrivacyPlan?
        if task.hasRecordPrivacy {
            do {
                plan = try await ledger.plan(runID: task.runID, privacy: PrivacyConfig(record: task.recordPrivacy),
                                             examples: data.count, training: training,
                                             plannedRounds: Int(task.recordPrivacy.plannedRounds))
            } catch {
                // Not this silo's to negotiate: it keeps its data private and waits for a run it can join.
                logger.error("record-privacy run refused by this silo", metadata: ["run": "\(task.runID)", "error": "\(error.message)"])
                try await Task.sleep(for: .seconds(config.backoffMaxSeconds))
                return
            }
        }
        // Charge before anything data-dependent leaves: priced from the task's parameters, checked against this
        // silo's own copy of its budget, signed and written durably.
        var charge: SiloCharge?
        let priced: (BudgetKey, Mechanism, Double)?
        do { priced = try release(of: task, spec: spec, plan: plan) } catch {
            // A release this silo cannot price is not made: it keeps its data and waits for another task.
            logger.error("task refused by this silo: its release cannot be priced", metadata: ["run": "\(task.runID)", "round": "\(task.round)", "error": "\(error)"])
            try await Task.sleep(for: .seconds(config.backoffMaxSeconds))
            return
        }
        if let (budget, mechanism, delta) = priced {
            let outcome: SiloLedger.Outcome
            do {
                outcome = try await ledger.charge(run: task.runID, round: Int(task.round), budget: budget, mechanism: mechanism,
                                                  delta: delta, roundLimit: plan?.plannedRounds)
            } catch {
                logger.error("update withheld", metadata: ["run": "\(task.runID)", "round": "\(task.round)", "error": "\(error.message)"])
                try await Task.sleep(for: .seconds(config.backoffMaxSeconds))
                return
            }
            switch outcome {
            case .refused(let why):
                try await decline(task, reason: .privacyBudget, detail: why, federation: federation)
                return
            case .charged(let c):
                charge = c
                CrashHook.reach("agent-charged")
            }
        }
        let result = try LocalUpdate.compute(model: spec, training: training, round: Int(task.round),
                                             globalWeights: weights, siloID: config.siloID, data: data, privacy: plan)
        var spent: SiloPrivacy?
        if let plan {
            spent = plan.spent(afterRounds: try await ledger.roundsCharged(run: task.runID))
            logger.info("privacy spent", metadata: ["run": "\(task.runID)", "round": "\(task.round)",
                                                    "epsilon": "\(spent!.epsilon)", "delta": "\(spent!.delta)",
                                                    "noise_multiplier": "\(spent!.noiseMultiplier)",
                                                    "sampling_rate": "\(spent!.samplingRate)", "steps": "\(spent!.steps)"])
        }
        if let charge { try await ledger.markSending(charge) }
        if task.hasSecure {
            try await aggregateSecurely(task, spec: spec, result: result, privacy: spent, federation: federation)
            return
        }
        var header = Conclave_V1_UpdateHeader()
        header.silo = silo.proto
        header.runID = task.runID
        header.round = task.round
        header.totalValues = UInt64(result.update.count)
        header.numExamples = UInt64(result.examples)
        header.trainLoss = result.trainLoss
        header.trainSeconds = result.seconds
        if let spent { header.privacy = spent.proto }
        let update = result.update
        let first = header
        let request = StreamingClientRequest<Conclave_V1_UpdateChunk> { writer in
            try await writer.write(.with { $0.header = first })
            for offset in WeightsCodec.offsets(count: update.count) {
                try await writer.write(.with { $0.weights = WeightsCodec.chunk(update, offset: offset) })
            }
        }
        do {
            let reply = try await federation.submitUpdate(request: request)
            logger.info("update sent", metadata: ["round": "\(task.round)", "loss": "\(result.trainLoss)",
                                                  "seconds": "\(result.seconds)", "reply": "\(reply.message)"])
        } catch let error as RPCError where error.code == .failedPrecondition {
            // The round closed without us (deadline): not fatal, ask for the next task.
            logger.warning("update not counted", metadata: ["round": "\(task.round)", "reason": "\(error.message)"])
        }
    }

    /// Tells the coordinator this silo will not take part in the round, and why (logged with the rule).
    private func decline(_ task: Conclave_V1_TrainTask, reason: DeclineReason, detail: String,
                         federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>) async throws {
        logger.warning("task declined", metadata: ["run": "\(task.runID)", "round": "\(task.round)",
                                                   "reason": "\(reason.rawValue)", "rule": "\(detail)"])
        let request = Conclave_V1_DeclineTaskRequest.with {
            $0.silo = silo.proto
            $0.runID = task.runID
            $0.round = task.round
            $0.reason = reason.proto
            $0.detail = String(detail.prefix(500))
            $0.signature = Data(identity.sign(SignedStatement.decline(runID: task.runID, round: Int(task.round),
                                                                     reason: reason, silo: config.siloID)))
        }
        do { _ = try await federation.declineTask(request) } catch let error as RPCError where error.code == .failedPrecondition {
            logger.info("decline not needed", metadata: ["round": "\(task.round)", "reason": "\(error.message)"])
        }
    }

    /// Sends the update through secure aggregation: the coordinator only ever sees it masked.
    private func aggregateSecurely(_ task: Conclave_V1_TrainTask, spec: ModelSpec, result: LocalUpdate.Result,
                                   privacy: SiloPrivacy?, federation: Conclave_V1_Federation.Client<HTTP2ClientTransport.Posix>) async throws {
        let stats = RoundStateMachine.Contribution(silo: config.siloID, examples: UInt64(result.examples),
                                                   trainLoss: result.trainLoss, trainSeconds: result.seconds,
                                                   privacy: privacy)
        do {
            let secure = try SecureTask(proto: task.secure, parameterCount: spec.parameterCount)
            let session = try SecureSiloSession(siloID: config.siloID, identity: identity, task: secure,
                                                update: result.update, threads: config.threads)
            guard let outcome = try await SecureExchange.run(federation, silo: silo.proto, runID: task.runID,
                                                             round: Int(task.round), session: session, stats: stats,
                                                             journal: journal, minSurvivors: config.policy.minSilosInAggregate,
                                                             identity: identity, interrupted: { [logger] error in
                logger.warning("secure stream broke; resuming the attempt", metadata: ["round": "\(task.round)", "error": "\(error.message)"])
            })
            else { return }
            let meta: Logger.Metadata = ["round": "\(task.round)", "loss": "\(result.trainLoss)",
                                         "seconds": "\(result.seconds)", "unmasked": "\(outcome.unmasked)",
                                         "dropped": "\(outcome.dropped)", "reply": "\(outcome.message)"]
            if outcome.completed {
                logger.info("update aggregated securely", metadata: meta)
            } else {
                logger.warning("secure round ended without this update", metadata: meta)
            }
        } catch let error as FederationError {
            // This silo refused something the coordinator relayed (a bad signature, a tampered share, a
            // survivor list below the threshold): its update stays private; it waits for the next round.
            logger.error("secure round refused by this silo", metadata: ["round": "\(task.round)", "error": "\(error.message)"])
        } catch let error as RPCError where [.failedPrecondition, .invalidArgument].contains(error.code) {
            logger.warning("secure round ended early", metadata: ["round": "\(task.round)", "reason": "\(error.message)"])
        }
    }
}

/// A time shared by the copies of the agent value.
final class SharedTime: Sendable {
    private let value = Mutex<Double>(0)
    func withLock<T>(_ body: (inout Double) -> T) -> T { value.withLock { body(&$0) } }
}

extension Agent {
    /// What this round would release of the silo's data, priced from the task's parameters: record — the
    /// silo's own DP-SGD plan (all local steps); central — the sum's Gaussian at the multiplier the round
    /// achieves; distributed — the discrete Gaussian sum as if only `threshold` shares survive (the fewest a
    /// sum can be unmasked with: the silo cannot know, and charges the worst case). Nil: no DP in the run.
    func release(of task: Conclave_V1_TrainTask, spec: ModelSpec,
                 plan: RecordPrivacyPlan?) throws -> (BudgetKey, Mechanism, Double)? {
        let dataset = PrivacyRelease.datasetName(config.datasetName)
        if let plan {
            return (BudgetKey(silo: config.siloID, dataset: dataset, unit: "record"), plan.release, plan.delta)
        }
        guard task.privacyMode == "central" || task.privacyMode == "distributed" else { return nil }
        guard task.hasSecure, task.noiseMultiplier > 0, task.privacyDelta > 0, task.privacyDelta < 1 else {
            throw FederationError(.invalidArgument, "the \(task.privacyMode)-DP task for round \(task.round) lacks its noise parameters (upgrade the coordinator)")
        }
        let secure = try SecureTask(proto: task.secure, parameterCount: spec.parameterCount)
        let budget = BudgetKey(silo: config.siloID, dataset: dataset, unit: "silo")
        if task.privacyMode == "central" {
            let central = CentralMechanism(z: task.noiseMultiplier, clipNorm: secure.clipNorm, dimension: spec.parameterCount,
                                           countStddev: task.countNoiseStddev > 0 ? task.countNoiseStddev : nil)
            return (budget, central.release, task.privacyDelta)
        }
        guard let ddg = secure.distributed else {
            throw FederationError(.invalidArgument, "the distributed-DP task for round \(task.round) carries no noise mechanism")
        }
        // The shares the noise was sized for: each share is z·C/√s (at most one per member).
        let shares = (pow(task.noiseMultiplier * ddg.clipNorm / ddg.localStddev, 2)).rounded()
        guard shares.isFinite, shares >= 1, shares <= Double(secure.members.count) else {
            throw FederationError(.invalidArgument, "the distributed-DP task for round \(task.round) has a noise share (σ \(ddg.localStddev)) that does not divide z·C among its \(secure.members.count) members")
        }
        let planned = Int(shares)
        return (budget, ddg.release(planned: planned, unmasked: max(1, min(secure.threshold, planned))), task.privacyDelta)
    }
}
