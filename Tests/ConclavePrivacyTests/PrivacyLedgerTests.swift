import ConclaveCrypto
@testable import ConclavePrivacy
import Foundation
import Testing

/// The ledger's pure core: budgets registered before charges, releases charged through the filter (refused
/// once it is spent), entries chained, signed, co-signed and committed to signed checkpoints; `LedgerVerifier`
/// passes an honest ledger and names the entry at fault for every kind of tampering.
@Suite struct PrivacyLedgerTests {
    struct Keys {
        let coordinator = Ed25519KeyPair(), officer = Ed25519KeyPair(), siloA = Ed25519KeyPair(), siloB = Ed25519KeyPair()
        var publicKeys: [String: [UInt8]] {
            ["coordinator": coordinator.publicKey, "privacy-officer/alice": officer.publicKey,
             "silo/a": siloA.publicKey, "silo/b": siloB.publicKey]
        }
        func silo(_ id: String) -> Ed25519KeyPair { id == "a" ? siloA : siloB }
    }

    let a = BudgetKey(silo: "a", dataset: "mnist", unit: "record")
    let b = BudgetKey(silo: "b", dataset: "mnist", unit: "record")

    /// Two budgets, releases until a's is spent (the last one refused), checkpoints co-signed by the silos.
    func honestLedger(_ k: Keys) throws -> (PrivacyLedger, [LedgerCheckpoint]) {
        var ledger = PrivacyLedger()
        let coordinator: PrivacyLedger.Signer = { ["coordinator": k.coordinator.sign($0)] }
        let officer: PrivacyLedger.Signer = { ["coordinator": k.coordinator.sign($0), "privacy-officer/alice": k.officer.sign($0)] }
        _ = try ledger.register(a, epsilon: 2, delta: 1e-5, actor: "alice", time: 1, sign: officer)
        _ = try ledger.register(b, epsilon: 8, delta: 1e-5, actor: "alice", time: 2, sign: officer)
        var checkpoints = [LedgerCheckpoint]()
        var round = 0
        while true {
            round += 1
            var refused = false
            for key in [a, b] {
                let mechanism = Mechanism.subsampledGaussian(samplingRate: 0.01, noiseMultiplier: 1.5, steps: 100)
                let (entry, charged) = try ledger.charge(key, mechanism: mechanism, run: "run-1", round: round,
                                                          modelSHA256: String(repeating: "ab", count: 32), time: Double(10 + round), sign: coordinator)
                if charged { ledger.cosign(seq: entry.entry.seq, signer: "silo/\(key.silo)", signature: k.silo(key.silo).sign(entry.entry.canonicalBytes)) }
                if !charged { refused = true }
            }
            if round == 2 || refused {
                var c = ledger.checkpoint(origin: "conclave/test", sign: coordinator)
                c.signatures["silo/a"] = k.siloA.sign(c.body)
                checkpoints.append(c)
            }
            if refused { break }
        }
        return (ledger, checkpoints)
    }

    /// Re-chains and re-signs every entry with the given keys, as an attacker holding them would.
    func resign(_ entries: [SignedEntry], _ k: Keys, silos: Bool) -> [SignedEntry] {
        var previous = ""
        return entries.map { signed in
            var e = signed.entry
            e.previous = previous
            previous = e.hashHex
            var sigs = ["coordinator": k.coordinator.sign(e.canonicalBytes)]
            if e.kind == .registration || e.kind == .amendment { sigs["privacy-officer/alice"] = k.officer.sign(e.canonicalBytes) }
            if silos, e.kind == .charge { sigs["silo/\(e.budget.silo)"] = k.silo(e.budget.silo).sign(e.canonicalBytes) }
            return SignedEntry(entry: e, signatures: sigs)
        }
    }

    func failure(_ checks: [LedgerVerifier.Check]) -> LedgerVerifier.Check? { checks.first { !$0.passed } }

    @Test func anHonestLedgerVerifiesAndStopsAtTheCap() throws {
        let k = Keys()
        let (ledger, checkpoints) = try honestLedger(k)
        let checks = LedgerVerifier.verify(entries: ledger.entries, checkpoints: checkpoints, keys: k.publicKeys)
        #expect(checks.allSatisfy { $0.passed }, "\(checks)")
        #expect(checks.map(\.name) == ["chain", "signatures", "charges", "checkpoints"])
        let refusals = ledger.entries.filter { $0.entry.kind == .refusal }
        #expect(refusals.count == 1 && refusals[0].entry.budget == a && refusals[0].entry.reason?.contains("remains") == true)
        #expect(ledger.filters[a]!.epsilonSpent <= 2 && ledger.filters[b]!.spent > 0)
        // Every charge's stored ε is the filter's and the rebuilt state equals the live one.
        let rebuilt = try PrivacyLedger(replaying: ledger.entries)
        #expect(rebuilt.filters == ledger.filters)
        // A second registration, a charge to an unknown budget and a bad mechanism are refused and change nothing.
        var copy = ledger
        #expect(throws: PrivacyError.self) { _ = try copy.register(a, epsilon: 5, delta: 1e-5, actor: "alice", time: 99) { _ in [:] } }
        #expect(throws: PrivacyError.self) {
            _ = try copy.charge(BudgetKey(silo: "c", dataset: "x", unit: "record"), mechanism: .subsampledGaussian(samplingRate: 0.1, noiseMultiplier: 1, steps: 1),
                                run: "r", round: 1, modelSHA256: nil, time: 99) { _ in [:] }
        }
        #expect(throws: PrivacyError.self) {
            _ = try copy.charge(b, mechanism: .subsampledGaussian(samplingRate: 2, noiseMultiplier: 1, steps: 1), run: "r", round: 1,
                                modelSHA256: nil, time: 99) { _ in [:] }
        }
        #expect(copy.entries == ledger.entries)
    }

    @Test func everyKindOfTamperingIsDetectedAndNamed() throws {
        let k = Keys()
        let (ledger, checkpoints) = try honestLedger(k)
        let entries = ledger.entries
        let charge = try #require(entries.first { $0.entry.kind == .charge }?.entry.seq)
        func expectFails(_ tampered: [SignedEntry], _ cps: [LedgerCheckpoint], _ check: String, _ naming: String, _ what: String) {
            let failed = failure(LedgerVerifier.verify(entries: tampered, checkpoints: cps, keys: k.publicKeys))
            #expect(failed?.name == check && failed?.detail.contains(naming) == true, "\(what): \(String(describing: failed))")
        }
        // An edited cap, with no re-signing: the next entry no longer follows it.
        var edited = entries
        edited[0].entry.epsilonCap = 50
        expectFails(edited, checkpoints, "chain", "entry 1", "edited cap")
        // A deleted, a duplicated and two swapped entries.
        var deleted = entries
        deleted.remove(at: charge)
        expectFails(deleted, checkpoints, "chain", "position \(charge)", "deleted entry")
        var duplicated = entries
        duplicated.insert(entries[charge], at: charge + 1)
        expectFails(duplicated, checkpoints, "chain", "position \(charge + 1)", "duplicated entry")
        var swapped = entries
        swapped.swapAt(charge, charge + 1)
        expectFails(swapped, checkpoints, "chain", "position \(charge)", "swapped entries")
        // Truncated below a signed checkpoint.
        expectFails(Array(entries.prefix(checkpoints[0].size - 1)), checkpoints, "checkpoints", "truncated", "truncation")
        // A lowered charge re-chained and re-signed with the coordinator's key alone: the silo's co-signature fails.
        var cheaper = entries
        cheaper[charge].entry.increment = RenyiFilter.Increment(atOrder: 0, byOrder: cheaper[charge].entry.increment!.byOrder.map { _ in 0 })
        expectFails(resign(cheaper, k, silos: false), checkpoints, "signatures", "entry \(charge)", "under-charge re-signed by the coordinator")
        // Even with every key: the recomputed cost exposes the lowered one.
        expectFails(resign(cheaper, k, silos: true), [], "charges", "entry \(charge)", "under-charge re-signed by everyone")
        // A lowered noise multiplier with its cost left as it was: recomputation again.
        var louder = entries
        louder[charge].entry.mechanism = .subsampledGaussian(samplingRate: 0.01, noiseMultiplier: 0.5, steps: 100)
        expectFails(resign(louder, k, silos: true), [], "charges", "entry \(charge)", "edited noise multiplier")
        // A refusal turned into a charge: the filter would have been exceeded.
        var overspent = entries
        let refusal = try #require(entries.firstIndex { $0.entry.kind == .refusal })
        overspent[refusal].entry.kind = .charge
        expectFails(resign(overspent, k, silos: true), [], "charges", "entry \(refusal)", "refusal turned into a charge")
        // A fully re-signed history cannot match the checkpoint a silo co-signed.
        expectFails(resign(cheaper, k, silos: true), checkpoints, "charges", "entry \(charge)", "rewritten history vs checkpoints")
        var forgedCheckpoint = checkpoints[0]
        forgedCheckpoint.root[0] ^= 1
        forgedCheckpoint.signatures["coordinator"] = k.coordinator.sign(forgedCheckpoint.body)
        expectFails(entries, [forgedCheckpoint], "checkpoints", "silo/a", "checkpoint re-signed without the silo")
        // A registration without the officer's signature.
        var unsigned = entries
        unsigned[0].signatures["privacy-officer/alice"] = nil
        expectFails(unsigned, checkpoints, "signatures", "entry 0", "registration without the officer")
    }

    /// An amendment starts a new epoch with a larger cap; what was spent stays spent.
    /// With the coordinator's committed rounds: every budgeted release has its charge and every charge its
    /// round; a round that released a budgeted silo's data uncharged, or a charge for a round that never
    /// committed, is named.
    @Test func everyReleaseHasItsChargeAndEveryChargeItsRound() throws {
        let k = Keys()
        let (ledger, checkpoints) = try honestLedger(k)
        let charges = ledger.entries.map(\.entry).filter { $0.kind == .charge }
        var rounds = [Int: CommittedRound]()
        for c in charges {
            rounds[c.round!, default: CommittedRound(run: c.run!, round: c.round!, modelSHA256: c.modelSHA256!, unit: "record",
                                                     silos: [], committedAt: c.time + 1, discarded: false)].silos.append(c.budget.silo)
        }
        let honest = rounds.values.sorted { $0.round < $1.round }
        let check = { (r: [CommittedRound]) in
            LedgerVerifier.verify(entries: ledger.entries, checkpoints: checkpoints, keys: k.publicKeys, rounds: r).last!
        }
        #expect(check(honest).passed && check(honest).name == "rounds", "\(check(honest))")
        // A committed round whose budgeted silo has no charge (the refused last round, committed anyway).
        var released = honest
        let refused = ledger.entries.map(\.entry).first { $0.kind == .refusal }!
        released.append(CommittedRound(run: "run-1", round: refused.round!, modelSHA256: String(repeating: "cd", count: 32), unit: "record",
                                       silos: ["a"], committedAt: refused.time + 1, discarded: false))
        #expect(!check(released).passed && check(released).detail.contains("silo 'a'"), "\(check(released))")
        // A charge whose round never committed.
        let missing = Array(honest.dropFirst())
        #expect(!check(missing).passed && check(missing).detail.contains("entry \(charges[0].seq)"), "\(check(missing))")
    }

    @Test func anAmendmentRaisesTheCapAndKeepsWhatWasSpent() throws {
        let k = Keys()
        var (ledger, checkpoints) = try honestLedger(k)
        let spent = ledger.filters[a]!.spent
        let officer: PrivacyLedger.Signer = { ["coordinator": k.coordinator.sign($0), "privacy-officer/alice": k.officer.sign($0)] }
        let amendment = try ledger.amend(a, epsilon: 4, reason: "second study approved", actor: "alice", time: 500, sign: officer)
        #expect(amendment.entry.epoch == 1 && ledger.filters[a]!.spent == spent && ledger.filters[a]!.epsilonCap == 4)
        let (_, charged) = try ledger.charge(a, mechanism: .subsampledGaussian(samplingRate: 0.01, noiseMultiplier: 1.5, steps: 100),
                                             run: "run-2", round: 1, modelSHA256: nil, time: 501) { ["coordinator": k.coordinator.sign($0)] }
        #expect(charged)
        let last = ledger.entries.count - 1
        ledger.cosign(seq: last, signer: "silo/a", signature: k.siloA.sign(ledger.entries[last].entry.canonicalBytes))
        checkpoints.append(ledger.checkpoint(origin: "conclave/test") { ["coordinator": k.coordinator.sign($0)] })
        let checks = LedgerVerifier.verify(entries: ledger.entries, checkpoints: checkpoints, keys: k.publicKeys)
        #expect(checks.allSatisfy { $0.passed }, "\(checks)")
    }

    /// Hostile or degenerate input never traps and never enters the ledger: a release whose cost is not a finite
    /// number (too little noise), a checkpoint of negative size in an export, a proof of charge with one.
    @Test func degenerateReleasesAndNegativeSizesAreRefusedNotTrapped() throws {
        var ledger = PrivacyLedger()
        let k = Keys()
        _ = try ledger.register(a, epsilon: 2, delta: 1e-5, actor: "alice", time: 1) { ["coordinator": k.coordinator.sign($0)] }
        #expect(throws: PrivacyError.self) {
            _ = try ledger.charge(a, mechanism: .subsampledGaussian(samplingRate: 1, noiseMultiplier: 1e-160, steps: 1), run: "r", round: 1,
                                  modelSHA256: nil, time: 2) { ["coordinator": k.coordinator.sign($0)] }
        }
        #expect(ledger.entries.count == 1)
        let (honest, checkpoints) = try honestLedger(k)
        var negative = checkpoints[0]
        negative.size = -3
        negative.signatures = ["coordinator": k.coordinator.sign(negative.body)]
        let check = LedgerVerifier.verify(entries: honest.entries, checkpoints: [negative], keys: k.publicKeys).first { !$0.passed }
        #expect(check?.detail.contains("negative") == true, "\(String(describing: check))")
        let export = LedgerExport(origin: "o", entries: honest.entries, checkpoints: checkpoints, keys: k.publicKeys)
        var proof = try ProofOfCharge.make(run: "run-1", round: 1, export: export)
        #expect(proof.verify().allSatisfy { $0.passed }, "\(proof.verify())")
        proof.checkpoint.size = -1
        #expect(proof.verify().contains { !$0.passed })
    }

    /// A silo's own filters keep every release it made even when a later amendment lowers the cap below what
    /// was spent: nothing more is admitted, nothing already spent vanishes.
    @Test func aLoweredCapKeepsWhatTheSiloSpent() throws {
        var ledger = PrivacyLedger()
        let none: PrivacyLedger.Signer = { _ in [:] }
        _ = try ledger.register(a, epsilon: 8, delta: 1e-5, actor: "alice", time: 1, sign: none)
        let mechanism = Mechanism.subsampledGaussian(samplingRate: 1, noiseMultiplier: 2, steps: 1)
        let charges = (1...4).map { SiloCharge(run: "r", round: $0, release: 0, budget: a, mechanism: mechanism, delta: 1e-5, time: Double($0)) }
        let before = try SiloFilters(adopted: ledger.entries.map(\.entry), charges: charges, maxEpsilon: nil)
        _ = try ledger.amend(a, epsilon: 5, reason: "lowered", actor: "alice", time: 9, sign: none)
        let after = try SiloFilters(adopted: ledger.entries.map(\.entry), charges: charges, maxEpsilon: nil)
        #expect(after.registered[a]!.spent == before.registered[a]!.spent && after.registered[a]!.spent > 0)
        let next = SiloCharge(run: "r", round: 5, release: 0, budget: a, mechanism: mechanism, delta: 1e-5, time: 10)
        #expect(after.refusal(next) != nil && before.refusal(next) == nil)
    }
}
