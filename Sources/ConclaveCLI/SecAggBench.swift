import ArgumentParser
import ConclaveCrypto
import ConclaveSecAgg
import Foundation

/// `conclave bench secagg`: the secure-aggregation protocol in-process on random updates, to size a
/// federation the way `openssl speed` sizes a cipher. Dropouts happen after key sharing — the case that costs
/// the coordinator most, since it must rebuild the dropped silos' pairwise masks.
struct SecAggBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secagg", abstract: "Time secure aggregation: per-silo masking, coordinator unmasking, plain sum.")
    @Option(help: "Number of silos.") var silos = 10
    @Option(help: "Parameters per update.") var params = 100_000
    @Option(help: "Fraction of silos that drop after sharing keys (0 ≤ F < 1).") var dropout = 0.0
    @Option(help: "Mask generator: aes (AES-128-CTR) or chacha (ChaCha20).") var prg = "aes"
    @Option(help: "Shamir threshold t (default: chosen from n and the dropout rate, as the coordinator does).") var threshold: Int?
    @Option(help: "Fraction of silos that may collude with the coordinator, for choosing the graph.") var corruption = 0.0
    @Option(help: "Threads the coordinator unmasks with.") var threads = 2
    @Option(help: "Neighbour graph: auto (as the coordinator picks: complete up to 100 silos), complete, or sparse (the Harary graph the coordinator would pick above 100).")
    var graph = GraphKind.auto
    @Flag(help: "Print one JSON object.") var json = false

    var kind: MaskGenerator.Kind? { MaskGenerator.Kind(rawValue: prg) }
    /// The graph and threshold the coordinator would pick (active adversary, at least 5 % dropout tolerated).
    var choice: GraphParameters.Choice? {
        let d = max(dropout, 0.05)
        return switch graph {
        case .auto: try? GraphParameters.choose(silos: silos, dropoutRate: d, corruptionRate: corruption)
        case .complete: try? GraphParameters.choose(silos: silos, dropoutRate: d, corruptionRate: corruption, completeUpTo: .max)
        case .sparse: try? GraphParameters.choose(silos: silos, dropoutRate: d, corruptionRate: corruption, completeUpTo: 1)
        }
    }
    var t: Int { threshold ?? choice?.threshold ?? silos / 2 + 1 }
    var dropped: Int { Int((dropout * Double(silos)).rounded()) }

    func validate() throws {
        guard silos >= 2 else { throw ValidationError("--silos must be at least 2") }
        guard params >= 1 else { throw ValidationError("--params must be at least 1") }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        guard kind != nil else { throw ValidationError("--prg must be aes or chacha, got '\(prg)'") }
        guard (1...silos).contains(t) else { throw ValidationError("--threshold must be in 1…\(silos)") }
        if threshold == nil, choice == nil {
            throw ValidationError("no safe graph for \(silos) silos at dropout \(dropout) and corruption \(corruption)")
        }
        guard silos - dropped >= t else {
            throw ValidationError("--dropout \(dropout) leaves \(silos - dropped) silos, below the threshold \(t)")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let ids = (0..<silos).map { "silo-\($0)" }
        let context = Array("bench/round-1".utf8)
        let neighbours = try choice.flatMap { c in c.complete ? nil : try NeighbourGraph.harary(ids, degree: c.degree, seed: context) }
        let parameters = SecAggParameters(context: context, threshold: t, length: params, prg: kind!, graph: neighbours)
        let identities = ids.map { _ in Ed25519KeyPair() }
        let directory = Dictionary(uniqueKeysWithValues: zip(ids, identities.map(\.publicKey)))
        var members = zip(ids, identities).map { SecAggSilo(id: $0, identity: $1, directory: directory, parameters: parameters) }
        var server = SecAggServer(parameters: parameters, directory: directory)
        server.threads = threads
        let encoding = try FixedPointEncoding(clipNorm: 1, maxSilos: silos)
        var rng = ChaChaDRBG()
        let scale = Float(1 / Double(params).squareRoot())
        let inputs = (0..<silos).map { _ in
            encoding.encode((0..<params).map { _ in Float(Double(rng.next() >> 11) * 0x1p-53 * 2 - 1) * scale }, using: &rng)
        }

        // The keystream floor, measured first: it also warms the cipher library (OpenSSL loads its providers on
        // first use, ~2 ms once per process), so the first silo's masking is timed warm like the rest — as an
        // agent's is from its second round on.
        let speed = try keystreamBytesPerSecond()
        for i in members.indices { try server.receiveKeys(members[i].advertiseKeys()) }
        _ = try server.endAdvertising()
        var shareTotal = 0.0
        for i in members.indices {
            var shares: [EncryptedShare] = []
            let keys = server.advertisements(for: ids[i])
            shareTotal += try seconds { shares = try members[i].shareKeys(keys) }
            try server.receiveShares(from: ids[i], shares)
        }
        let mail = try server.endSharing()
        let live = Array(dropped..<silos)
        var maskTotal = 0.0
        for i in live {
            var masked: [UInt32] = []
            maskTotal += try seconds { masked = try members[i].maskInput(inputs[i], received: mail[ids[i]] ?? []) }
            try server.receiveMaskedInput(from: ids[i], context: parameters.context, masked)
        }
        let survivors = try server.endCollection()
        for i in live { try server.receiveSurvivorSignature(from: ids[i], members[i].signSurvivors(survivors)) }
        let signatures = try server.endConsistencyCheck()
        for i in live { try server.receiveUnmasking(members[i].unmask(signatures: signatures)) }
        var unmasked: [UInt32] = []
        let unmaskSeconds = try seconds { unmasked = try server.finish().sum }
        var plain = [UInt32](repeating: 0, count: params)
        let plainSeconds = seconds { for i in live { plain.addModular(inputs[i]) } }

        // The PRG floor for one silo: self mask + one pairwise mask per other silo that shared, at the
        // keystream speed measured now.
        let streams = (neighbours.map { $0.neighbours(of: ids[0]).count } ?? (silos - 1)) + 1
        let floor = Double(params) * Double(streams) * 4 / speed
        let maskSeconds = maskTotal / Double(live.count)
        let result: [String: Any] = [
            "silos": silos, "params": params, "graph": graph.rawValue, "neighbours": streams - 1, "dropout": dropout, "dropped": dropped, "threshold": t, "prg": prg,
            "threads": threads, "share_seconds": shareTotal / Double(silos), "mask_seconds": maskSeconds, "unmask_seconds": unmaskSeconds,
            "plain_sum_seconds": plainSeconds, "exact": unmasked == plain, "keystream_gb_per_s": speed / 1e9,
            "mask_floor_seconds": floor, "mask_vs_floor": maskSeconds / floor,
        ]
        if json { printJSON(result); return }
        print("secure aggregation: \(silos) silos (\(dropped) dropped), \(params) parameters, \(streams - 1) neighbours each, t = \(t), \(prg)")
        print(String(format: "  key sharing/silo   %.4f s  (key agreements, Shamir, encryption: before the input exists)",
                     shareTotal / Double(silos)))
        print(String(format: "  masking per silo   %.4f s  (%.2f× the keystream floor of %.4f s at %.2f GB/s)",
                     maskSeconds, maskSeconds / floor, floor, speed / 1e9))
        print(String(format: "  unmasking          %.4f s  (%d threads)", unmaskSeconds, threads))
        print(String(format: "  plain sum          %.4f s", plainSeconds))
        print("  exact              \(unmasked == plain)")
    }

    /// Single-thread keystream speed of the chosen PRG, best of three 64 MiB runs.
    func keystreamBytesPerSecond() throws -> Double {
        let key = SecureRandom.bytes(32)
        let stream: any Keystream = kind == .aes ? try AESCTRKeystream(key: Array(key.prefix(16))) : try ChaCha20Keystream(key: key)
        var buffer = [UInt8](repeating: 0, count: 64 << 20)
        var best = Double.infinity
        for _ in 0..<3 { best = min(best, try seconds { try buffer.withUnsafeMutableBytes { try stream.fill($0) } }) }
        return Double(buffer.count) / best
    }
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let d = try ContinuousClock().measure(body)
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// `--graph`: the coordinator's own choice, or one forced for comparison with a peer's protocol.
enum GraphKind: String, ExpressibleByArgument, CaseIterable {
    case auto, complete, sparse
}
