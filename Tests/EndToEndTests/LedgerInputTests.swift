import ConclaveCoordinator
import ConclaveCrypto
import ConclaveFederation
import ConclavePrivacy
import ConclaveStorage
import ConclaveTesting
import Foundation
import Logging
import Testing
import ConclaveWire
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// What officers and silos send the ledger is checked before anything is stored: a forged, edited, stale or
/// misattributed entry, a co-signature that does not verify or is on another silo's entry, a size beyond the
/// ledger — each refused with the reason, the ledger unchanged.
@Suite struct LedgerInputTests {
    func driver() throws -> (RunDriver, String) {
        let dir = Fixtures.temporaryDirectory("conclave-ledger-input")
        return (try RunDriver(config: InProcessCoordinator.config(directory: dir), logger: Logger(label: "test")), dir)
    }

    func refused(_ code: FederationError.Code, _ containing: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("accepted; expected \(code) '\(containing)'")
        } catch let error as FederationError {
            #expect(error.code == code && error.message.contains(containing), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func officersEntriesAreCheckedBeforeTheyAreStored() async throws {
        let (d, _) = try driver()
        let officer = Ed25519KeyPair(), other = Ed25519KeyPair()
        let budget = BudgetKey(silo: "s1", dataset: "d", unit: "silo")
        let draft = try await d.draftBudgetEntry(kind: .registration, budget: budget, epsilon: 4, delta: 1e-5, reason: "", actor: "po")
        let bytes = draft.canonicalBytes
        await refused(.invalidArgument, "does not verify") {
            _ = try await d.appendOfficerEntry(bytes, signature: other.sign(bytes), actor: "po", officerKey: officer.publicKey)
        }
        await refused(.invalidArgument, "names 'po'") {
            _ = try await d.appendOfficerEntry(bytes, signature: officer.sign(bytes), actor: "mallory", officerKey: officer.publicKey)
        }
        var edited = draft
        edited.epsilonCap = 400
        await refused(.invalidArgument, "canonical") {
            _ = try await d.appendOfficerEntry(Array(bytes.dropLast()), signature: officer.sign(bytes), actor: "po", officerKey: officer.publicKey)
        }
        // Signed by the officer but not what the coordinator drafts: another filter order, a smuggled field.
        var reordered = draft
        reordered.order = 1.5
        var smuggled = draft
        smuggled.run = "run-x"
        for crafted in [reordered, smuggled] {
            await refused(.invalidArgument, "not the entry the coordinator drafts") {
                _ = try await d.appendOfficerEntry(crafted.canonicalBytes, signature: officer.sign(crafted.canonicalBytes), actor: "po", officerKey: officer.publicKey)
            }
        }
        await refused(.failedPrecondition, "no signing key") {
            _ = try await d.appendOfficerEntry(bytes, signature: officer.sign(bytes), actor: "po", officerKey: nil)
        }
        #expect(try d.store.ledgerEntries().isEmpty)
        // The honest one goes in; the same draft again no longer continues the ledger.
        #expect(try await d.appendOfficerEntry(bytes, signature: officer.sign(bytes), actor: "po", officerKey: officer.publicKey) == 0)
        await refused(.aborted, "draft it again") {
            _ = try await d.appendOfficerEntry(edited.canonicalBytes, signature: officer.sign(edited.canonicalBytes), actor: "po", officerKey: officer.publicKey)
        }
        await refused(.alreadyExists, "already registered") {
            _ = try await d.draftBudgetEntry(kind: .registration, budget: budget, epsilon: 4, delta: 1e-5, reason: "", actor: "po")
        }
        for (key, epsilon, reason) in [(BudgetKey(silo: "s1", dataset: "d", unit: "user"), 1.0, "unit"),
                                       (BudgetKey(silo: "s 1", dataset: "d", unit: "silo"), 1.0, "silo"),
                                       (BudgetKey(silo: "s2", dataset: "d", unit: "silo"), Double.nan, "ε cap")] {
            await refused(.invalidArgument, reason) {
                _ = try await d.draftBudgetEntry(kind: .registration, budget: key, epsilon: epsilon, delta: 1e-5, reason: "", actor: "po")
            }
        }
        await refused(.notFound, "no budget") {
            _ = try await d.draftBudgetEntry(kind: .amendment, budget: BudgetKey(silo: "s9", dataset: "d", unit: "silo"), epsilon: 9, delta: 0, reason: "r", actor: "po")
        }
        await refused(.invalidArgument, "reason") {
            _ = try await d.draftBudgetEntry(kind: .amendment, budget: budget, epsilon: 9, delta: 0, reason: "  ", actor: "po")
        }
        #expect(try d.store.ledgerEntries().count == 1)
    }

    @Test func silosCoSignOnlyTheirOwnEntriesWithTheirOwnKey() async throws {
        let (d, _) = try driver()
        let officer = Ed25519KeyPair(), s1 = Ed25519KeyPair(), s2 = Ed25519KeyPair()
        _ = try d.store.enrolIdentity(silo: "s1", key: s1.publicKey, dataset: "d", examples: 1, now: 0)
        _ = try d.store.enrolIdentity(silo: "s2", key: s2.publicKey, dataset: "d", examples: 1, now: 0)
        for silo in ["s1", "s2"] {
            let e = try await d.draftBudgetEntry(kind: .registration, budget: BudgetKey(silo: silo, dataset: "d", unit: "silo"),
                                                 epsilon: 4, delta: 1e-5, reason: "", actor: "po")
            _ = try await d.appendOfficerEntry(e.canonicalBytes, signature: officer.sign(e.canonicalBytes), actor: "po", officerKey: officer.publicKey)
        }
        await refused(.failedPrecondition, "truncated or forked") { _ = try await d.witnessSync(silo: "s1", cosignedSize: 3) }
        let view = try await d.witnessSync(silo: "s1", cosignedSize: 0)
        #expect(view.checkpoint.size == 2 && view.entries.map(\.entry.entry.seq) == [0])
        let body = view.checkpoint.body
        let mine = view.entries[0].entry.entry.canonicalBytes
        await refused(.invalidArgument, "does not verify") {
            try await d.witnessCosign(silo: "s1", size: 2, checkpointSignature: s2.sign(body), entrySignatures: [:])
        }
        await refused(.invalidArgument, "not one of its own") {
            try await d.witnessCosign(silo: "s1", size: 2, checkpointSignature: s1.sign(body), entrySignatures: [1: s1.sign(mine)])
        }
        await refused(.invalidArgument, "entry 0") {
            try await d.witnessCosign(silo: "s1", size: 2, checkpointSignature: s1.sign(body), entrySignatures: [0: s2.sign(mine)])
        }
        await refused(.notFound, "size 7") {
            try await d.witnessCosign(silo: "s1", size: 7, checkpointSignature: s1.sign(body), entrySignatures: [:])
        }
        #expect(try d.store.ledgerCheckpoints().first?.signatures.keys.sorted() == ["coordinator"])
        try await d.witnessCosign(silo: "s1", size: 2, checkpointSignature: s1.sign(body), entrySignatures: [0: s1.sign(mine)])
        #expect(try d.store.ledgerCheckpoints().first?.signatures.keys.sorted() == ["coordinator", "silo/s1"])
        #expect(try d.store.ledgerEntries()[0].signatures["silo/s1"] != nil && d.store.ledgerEntries()[1].signatures["silo/s1"] == nil)
    }

    /// Over mutual TLS a silo witnesses only as itself: asking for another silo's entries or co-signing as
    /// another silo is refused by name, before the driver is asked.
    @Test func aSiloWitnessesOnlyAsItself() async throws {
        let keys = ["s1": Ed25519KeyPair(), "s2": Ed25519KeyPair()]
        let spec = """
            name = "w"
            rounds = 1
            min_silos = 2
            [model]
            architecture = "logreg"
            input_features = 8
            num_classes = 3
            [training]
            learning_rate = 0.1
            """
        try await InProcessCoordinator.withMutualTLSClients(spec: spec, silos: keys.map { ($0.key, $0.value.publicKey) },
                                                           logger: Logger(label: "test")) { _, _, clients in
            let witness = Conclave_V1_Witness.Client(wrapping: clients["s1"]!)
            do {
                _ = try await witness.sync(.with { $0.siloID = "s2" })
                Issue.record("silo s1 read silo s2's entries")
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied && error.message.contains("cannot act for silo 's2'"), "\(error)")
            }
            do {
                _ = try await witness.cosign(.with { $0.siloID = "s2"; $0.size = 0 })
                Issue.record("silo s1 co-signed as silo s2")
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied, "\(error)")
            }
            // As itself it is answered (an empty ledger: a checkpoint of size 0).
            let own = try await witness.sync(.with { $0.siloID = "s1" })
            #expect(own.entries.isEmpty && own.coordinatorKey.count == 32)
        }
    }
}
