import ConclaveCrypto
import ConclaveSecAgg
import Testing

/// The whole protocol in-process: n silos and the coordinator exchanging messages directly, with silos
/// dropping out at every phase. The unmasked result must equal the plain modular sum of the inputs of the
/// silos whose masked inputs arrived — exactly.
struct Federation {
    enum Drop: Hashable { case afterAdvertising, afterSharing, afterMasking, duringUnmasking }

    var silos: [SecAggSilo]
    var server: SecAggServer
    let inputs: [[UInt32]]
    let parameters: SecAggParameters

    init(n: Int, threshold: Int, length: Int, prg: MaskGenerator.Kind = .aes, context: String = "run-1/round-1",
         hararyDegree: Int? = nil) {
        let ids = (0..<n).map { "silo-" + String(String($0 + 1000).dropFirst()) }
        let graph = hararyDegree.map { try! NeighbourGraph.harary(ids, degree: $0, seed: Array(context.utf8)) }
        let parameters = SecAggParameters(context: Array(context.utf8), threshold: threshold, length: length, prg: prg,
                                          graph: graph)
        self.parameters = parameters
        let identities = (0..<n).map { _ in Ed25519KeyPair() }
        let directory = Dictionary(uniqueKeysWithValues: zip(ids, identities.map(\.publicKey)))
        silos = zip(ids, identities).map { SecAggSilo(id: $0, identity: $1, directory: directory, parameters: parameters) }
        server = SecAggServer(parameters: parameters, directory: directory)
        var rng = ChaChaDRBG(seed: [UInt8](repeating: UInt8(n), count: 32))
        inputs = (0..<n).map { _ in (0..<length).map { _ in UInt32(truncatingIfNeeded: rng.next()) } }
    }

    /// Runs every phase; returns the unmasked sum and the plain sum over the silos that sent masked inputs.
    mutating func run(drops: [Drop: Set<Int>] = [:]) throws -> (unmasked: [UInt32], expected: [UInt32], survivors: [String]) {
        let all = Set(silos.indices)
        for i in all { try server.receiveKeys(silos[i].advertiseKeys()) }
        _ = try server.endAdvertising()
        var live = all.subtracting(drops[.afterAdvertising] ?? [])
        for i in live.sorted() {
            try server.receiveShares(from: silos[i].id, silos[i].shareKeys(server.advertisements(for: silos[i].id)))
        }
        let mailbox = try server.endSharing()
        live.subtract(drops[.afterSharing] ?? [])
        var expected = [UInt32](repeating: 0, count: parameters.length)
        for i in live.sorted() {
            let masked = try silos[i].maskInput(inputs[i], received: mailbox[silos[i].id] ?? [])
            #expect(masked != inputs[i])
            try server.receiveMaskedInput(from: silos[i].id, context: parameters.context, masked)
            expected.addModular(inputs[i])
        }
        let survivors = try server.endCollection()
        live.subtract(drops[.afterMasking] ?? [])
        for i in live.sorted() { try server.receiveSurvivorSignature(from: silos[i].id, silos[i].signSurvivors(survivors)) }
        let signatures = try server.endConsistencyCheck()
        live.subtract(drops[.duringUnmasking] ?? [])
        for i in live.sorted() { try server.receiveUnmasking(silos[i].unmask(signatures: signatures)) }
        let result = try server.finish()
        return (result.sum, expected, result.survivors)
    }
}

@Suite struct ProtocolTests {
    @Test(arguments: [(3, 2), (10, 6), (100, 51)])
    func sumIsExactWithoutDropouts(n: Int, threshold: Int) throws {
        var f = Federation(n: n, threshold: threshold, length: 257)
        let r = try f.run()
        #expect(r.unmasked == r.expected)
        #expect(r.survivors.count == n)
    }

    @Test(arguments: [Federation.Drop.afterAdvertising, .afterSharing, .afterMasking, .duringUnmasking])
    func sumIsExactWithNMinusTDropoutsAtEachPhase(phase: Federation.Drop) throws {
        for (n, t) in [(3, 2), (10, 6)] {
            var f = Federation(n: n, threshold: t, length: 100)
            let dropped = Set((0..<(n - t)).map { $0 * 2 % n })
            let r = try f.run(drops: [phase: dropped])
            #expect(r.unmasked == r.expected, "n=\(n) dropping \(dropped) \(phase)")
        }
    }

    @Test func hundredSilosWithDropoutsSpreadOverEveryPhase() throws {
        var f = Federation(n: 100, threshold: 51, length: 64, prg: .chacha)
        let r = try f.run(drops: [.afterAdvertising: [1, 2, 3], .afterSharing: [10, 11, 12, 13, 14], .afterMasking: [20, 21],
                                  .duringUnmasking: Set(30..<68)])
        #expect(r.unmasked == r.expected)
        #expect(r.survivors.count == 92)
    }

    /// SecAgg+: 150 silos on a Harary graph with the degree and threshold the parameter finder picks for 10 %
    /// dropout; each silo shares and masks with its k neighbours only, and the sum is still exact.
    @Test func hararyGraphFederationSumsExactly() throws {
        let choice = try GraphParameters.choose(silos: 150, dropoutRate: 0.1, adversary: .curious, completeUpTo: 100)
        #expect(!choice.complete && choice.degree < 149)
        var f = Federation(n: 150, threshold: choice.threshold, length: 300, hararyDegree: choice.degree)
        let r = try f.run(drops: [.afterAdvertising: [0, 50], .afterSharing: [3, 77, 120], .afterMasking: [9],
                                  .duringUnmasking: [11, 12, 140]])
        #expect(r.unmasked == r.expected)
        #expect(r.survivors.count == 145)
    }

    @Test func fewerThanTSurvivorsAbortsCleanly() throws {
        var f = Federation(n: 5, threshold: 3, length: 8)
        #expect(throws: SecAggError.self) { try f.run(drops: [.afterSharing: [0, 1, 2]]) }
        #expect(f.server.phase == .aborted("only 2 silos sent masked inputs, fewer than the threshold 3"))
        var g = Federation(n: 5, threshold: 3, length: 8)
        #expect(throws: SecAggError.self) { try g.run(drops: [.duringUnmasking: [0, 1, 2]]) }
        #expect(g.server.phase == .aborted("only 2 silos sent unmasking shares, fewer than the threshold 3"))
    }

    @Test func badKeySignaturesAreRefused() throws {
        var f = Federation(n: 3, threshold: 2, length: 4)
        var ad = f.silos[0].advertiseKeys()
        ad.maskKey[0] ^= 1  // a coordinator or network swapping in its own key
        let error = #expect(throws: SecAggError.self) { try f.server.receiveKeys(ad) }
        #expect(error?.message == "key advertisement of silo 'silo-000' has a bad signature")
        // A silo given the forged key list refuses it too.
        let others = [f.silos[1].advertiseKeys(), f.silos[2].advertiseKeys()]
        #expect(throws: SecAggError.self) { try f.silos[1].shareKeys([ad] + others) }
    }

    @Test func tamperedAndReplayedSharesAreRefused() throws {
        var f = Federation(n: 3, threshold: 2, length: 4)
        var keys = [KeyAdvertisement]()
        for i in 0..<3 { keys.append(f.silos[i].advertiseKeys()) }
        let fromZero = try f.silos[0].shareKeys(keys)
        _ = try f.silos[1].shareKeys(keys)
        var tampered = fromZero.first { $0.to == "silo-001" }!
        tampered.ciphertext[30] ^= 1
        let e1 = #expect(throws: SecAggError.self) { try f.silos[1].maskInput([1, 2, 3, 4], received: [tampered]) }
        #expect(e1?.message.contains("failed authentication") == true)
        // The bundle for silo-002 relayed to silo-001 under silo-002's name: refused.
        var redirected = fromZero.first { $0.to == "silo-002" }!
        redirected.to = "silo-001"
        #expect(throws: SecAggError.self) { try f.silos[1].maskInput([1, 2, 3, 4], received: [redirected]) }

        // A share from an earlier round replayed into this one: different context, so authentication fails.
        var old = Federation(n: 3, threshold: 2, length: 4, context: "run-1/round-0")
        var oldKeys = [KeyAdvertisement]()
        for i in 0..<3 { oldKeys.append(old.silos[i].advertiseKeys()) }
        let replay = try old.silos[0].shareKeys(oldKeys).first { $0.to == "silo-001" }!
        #expect(throws: SecAggError.self) { try f.silos[1].maskInput([1, 2, 3, 4], received: [replay]) }
    }

    @Test func maskedInputsOfWrongLengthOrRoundAreRefused() throws {
        var f = Federation(n: 3, threshold: 2, length: 4)
        var keys = [KeyAdvertisement]()
        for i in 0..<3 { try f.server.receiveKeys(f.silos[i].advertiseKeys()) }
        keys = try f.server.endAdvertising()
        for i in 0..<3 { try f.server.receiveShares(from: f.silos[i].id, f.silos[i].shareKeys(keys)) }
        _ = try f.server.endSharing()
        let short = #expect(throws: SecAggError.self) {
            try f.server.receiveMaskedInput(from: "silo-000", context: f.parameters.context, [1, 2, 3])
        }
        #expect(short?.message == "masked input from 'silo-000' has 3 values, the round expects 4")
        let otherRound = #expect(throws: SecAggError.self) {
            try f.server.receiveMaskedInput(from: "silo-000", context: Array("run-1/round-2".utf8), [1, 2, 3, 4])
        }
        #expect(otherRound?.message == "masked input from 'silo-000' is for another round")
        try f.server.receiveMaskedInput(from: "silo-000", context: f.parameters.context, [1, 2, 3, 4])
        #expect(throws: SecAggError.self) {
            try f.server.receiveMaskedInput(from: "silo-000", context: f.parameters.context, [1, 2, 3, 4])
        }
    }

    /// A coordinator that claims a live silo dropped — to get its mask-key share from some silos while others
    /// reveal its self-mask share — must show silos different survivor lists. Silos only unmask against t
    /// valid signatures on the list they signed themselves, so the lie yields nothing.
    @Test func coordinatorCannotObtainBothSharesOfOneSilo() throws {
        var f = Federation(n: 4, threshold: 3, length: 4)
        var keys = [KeyAdvertisement]()
        for i in 0..<4 { keys.append(f.silos[i].advertiseKeys()) }
        var mail = [String: [EncryptedShare]]()
        for i in 0..<4 { for s in try f.silos[i].shareKeys(keys) { mail[s.to, default: []].append(s) } }
        for i in 0..<4 { _ = try f.silos[i].maskInput([0, 0, 0, 0], received: mail[f.silos[i].id]!) }
        let honest = ["silo-000", "silo-001", "silo-002", "silo-003"]
        let lie = ["silo-001", "silo-002", "silo-003"]  // told to silo-003: "silo-000 dropped"
        var honestSignatures = [String: [UInt8]]()
        for i in 0..<3 { honestSignatures[f.silos[i].id] = try f.silos[i].signSurvivors(honest) }
        let lieSignature = try f.silos[3].signSurvivors(lie)

        // Silo-003 will not reveal silo-000's mask-key share: the honest signatures are not on its list…
        #expect(throws: SecAggError.self) { try f.silos[3].unmask(signatures: honestSignatures) }
        // …and its own signature alone is fewer than t.
        let alone = #expect(throws: SecAggError.self) { try f.silos[3].unmask(signatures: ["silo-003": lieSignature]) }
        #expect(alone?.message.contains("fewer than the threshold") == true)
        // The honest silos reveal silo-000's self-mask share, never its mask-key share.
        for i in 0..<3 {
            let response = try f.silos[i].unmask(signatures: honestSignatures)
            #expect(response.selfMaskShares["silo-000"] != nil)
            #expect(response.maskKeyShares.isEmpty)
        }
    }
}
