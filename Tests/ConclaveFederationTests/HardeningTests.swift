import ConclaveFederation
import ConclaveLearning
import Testing

/// The pure parts of hardening: wire values checked where they enter, the silo's own policy, and a declined
/// task leaving the silo out of the round without harming anyone else.
@Suite struct HardeningTests {
    @Test func wireNamesAreBoundedPrintableAndNeverEchoedWhole() throws {
        #expect(try WireCheck.name("hospital-north_2.eu", "silo id") == "hospital-north_2.eu")
        #expect(try WireCheck.name("klinik-zürich", "silo id") == "klinik-zürich")
        for bad in ["", "a b", "tab\t", "cr\r", "esc\u{1B}[2J", "nul\u{0}", "zw\u{200B}j", "slash/x", "quote'"] {
            #expect(throws: FederationError.self) { try WireCheck.name(bad, "silo id") }
        }
        let long = String(repeating: "x", count: 1_000_000)
        let error = #expect(throws: FederationError.self) { try WireCheck.name(long, "silo id") }
        #expect((error?.message.count ?? .max) < 200)
        #expect(error?.message.contains("1000000 bytes") == true)
        #expect(WireCheck.preview("a\r\n\u{1B}\u{0}\"b") == #"'a\r\n\u{1b}\u{0}\"b'"#)
        #expect(throws: FederationError.self) { try WireCheck.text("fine\u{7}", "dataset") }
        #expect(try WireCheck.text("Fashion MNIST (v2)", "dataset") == "Fashion MNIST (v2)")
    }

    @Test func wireNumbersAreCheckedAgainstTheirRanges() throws {
        #expect(try WireCheck.count(5, "n", max: 10) == 5)
        for huge in [UInt64(1) << 63, .max, 11] {
            #expect(throws: FederationError.self) { try WireCheck.count(huge, "n", max: 10) }
        }
        for bad in [Double.nan, .infinity, -.infinity, -1] {
            #expect(throws: FederationError.self) { try WireCheck.finite(bad, "loss", in: 0...1e30) }
        }
        #expect(throws: FederationError.self) { try WireCheck.bytes(31, "key", allowed: [0, 32]) }
    }

    @Test func theDefaultPolicyProtectsTheSilo() {
        let policy = SiloPolicy()
        #expect(policy.refusal(secure: nil, privacyMode: "none")?.0 == .secureAggregationRequired)
        #expect(policy.refusal(secure: (threshold: 2, members: 3), privacyMode: "none")?.0 == .aggregateTooSmall)
        #expect(policy.refusal(secure: (threshold: 3, members: 5), privacyMode: "none") == nil)
        #expect(policy.refusal(secure: (threshold: 3, members: 5), privacyMode: "") == nil)
        let strict = SiloPolicy(requireSecureAggregation: false, minSilosInAggregate: 10, acceptedPrivacy: ["record", "distributed"])
        #expect(strict.refusal(secure: (threshold: 3, members: 5), privacyMode: "central")?.0 == .privacyMode)
        #expect(strict.refusal(secure: nil, privacyMode: "record") == nil)
        #expect(strict.refusal(secure: (threshold: 6, members: 12), privacyMode: "distributed")?.1.contains("min_silos_in_aggregate") == true)
    }

    static let model = try! ModelSpec(architecture: .logreg, inputFeatures: 2, hidden: [], classCount: 2)

    func plainMachine(minSilos: Int, perRound: Int? = nil) throws -> RoundStateMachine {
        let spec = try RunSpec(name: "t", model: Self.model, rounds: 2, training: TrainingConfig(), minSilos: minSilos,
                               silosPerRound: perRound, roundDeadlineSeconds: 10)
        return RoundStateMachine(runID: "run-1", spec: spec, globalWeights: [Float](repeating: 0, count: 6))
    }

    func silo(_ id: String) -> SiloInfo { SiloInfo(id: id, examples: 10, features: 2, classes: 2) }

    @Test func aDeclinedTaskLeavesTheSiloOutAndTheRoundClosesWithoutIt() throws {
        var m = try plainMachine(minSilos: 2, perRound: 3)
        let silos = ["a", "b", "c"].map(silo)
        for _ in 0..<2 { for s in silos { _ = try m.requestWork(from: s, now: 0) } }
        #expect(m.openRoundNumber == 1)
        // A decline for a round that is not open, or from a silo not selected, is refused and changes nothing.
        #expect(throws: FederationError.self) {
            try m.decline(from: silos[0], runID: "run-1", round: 2, reason: .privacyMode, now: 1)
        }
        #expect(throws: FederationError.self) {
            try m.decline(from: silo("z"), runID: "run-1", round: 1, reason: .privacyMode, now: 1)
        }
        #expect(try m.decline(from: silos[2], runID: "run-1", round: 1, reason: .aggregateTooSmall, now: 1).isNone)
        // Declining twice, or sending an update after declining, is refused.
        #expect(throws: FederationError.self) {
            try m.decline(from: silos[2], runID: "run-1", round: 1, reason: .aggregateTooSmall, now: 1)
        }
        guard case .wait = try m.requestWork(from: silos[2], now: 1) else { Issue.record("a declined silo must not train"); return }
        _ = try m.submit(from: silos[0], runID: "run-1", round: 1, update: [1, 1, 1, 1, 1, 1], trainLoss: 0, trainSeconds: 0, now: 2)
        guard case .roundClosed(let closed) = try m.submit(from: silos[1], runID: "run-1", round: 1, update: [1, 1, 1, 1, 1, 1],
                                                            trainLoss: 0, trainSeconds: 0, now: 2) else {
            Issue.record("the round should close once every silo that did not decline reported"); return
        }
        #expect(closed.contributions.map(\.silo) == ["a", "b"])
    }

    @Test func declinesBelowTheMinimumAbandonAtOnce() throws {
        var m = try plainMachine(minSilos: 2)
        let silos = ["a", "b"].map(silo)
        for _ in 0..<2 { for s in silos { _ = try m.requestWork(from: s, now: 0) } }
        guard case .roundAbandoned(let round, let reason) = try m.decline(from: silos[0], runID: "run-1", round: 1,
                                                                          reason: .secureAggregationRequired, now: 1) else {
            Issue.record("one of two required silos declined: the round cannot close"); return
        }
        #expect(round == 1 && reason.contains("declined"))
    }
}

extension HardeningTests {
    /// A silo that already masked its input into round 1 (an attempt lost to a crash) sits the round out: it is
    /// not selected again for it, and the coordinator says why it waits instead of reopening the round in a loop.
    @Test func silosThatAlreadyMaskedSitTheRoundOut() throws {
        var m = try plainMachine(minSilos: 3, perRound: 3)
        let silos = ["a", "b", "c"].map(silo)
        for _ in 0..<2 { for s in silos { _ = try m.requestWork(from: s, now: 0) } }
        guard case .roundAbandoned = try m.decline(from: silos[0], runID: "run-1", round: 1, reason: .alreadyMasked, now: 1) else {
            Issue.record("three silos are needed per round: one sitting out abandons the attempt"); return
        }
        #expect(m.sittingOut == ["a"])
        for s in silos {
            guard case .wait(let reason) = try m.requestWork(from: s, now: 2) else { Issue.record("round 1 must not reopen with a"); return }
            #expect(reason.contains("a sit it out"))
        }
        #expect(m.openRoundNumber == nil)
        // A fourth silo arrives: round 1 reopens without the one that sat out.
        _ = try m.requestWork(from: silo("d"), now: 3)
        guard case .collecting(let open) = m.state else { Issue.record("round 1 should reopen with b, c, d"); return }
        #expect(open.selected == ["b", "c", "d"])
    }
}
