import ConclaveCrypto
public import ConclavePrivacy
import ConclaveSiloLedger
import Foundation

/// `conclave-client budget verify`: the silo's own ledger checked on its own (every charge signed by the silo's
/// key; the filters replay), and — against a coordinator export — compared with the coordinator's: every charge
/// the coordinator recorded on this silo's data matches one the silo made and costs no more, every entry of
/// its own the silo checked and co-signed is in the export unchanged, and the export still holds the checkpoint the silo
/// co-signed (nothing dropped, edited or forked since).
public enum SiloLedgerAudit {
    public static func verify(path: String, siloID: String, publicKey: [UInt8], maxEpsilon: Double?,
                              against export: LedgerExport?) throws -> [LedgerVerifier.Check] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SiloLedgerError("no privacy ledger at \(path): this silo has released nothing (or the file was removed — restore it)")
        }
        let store = try SiloLedgerStore(path: path)
        let stored = try store.charges()
        let adopted = try store.adopted()
        var checks = [LedgerVerifier.Check]()
        if let bad = stored.first(where: { !Ed25519.verify(signature: $0.signature, message: $0.charge.signedBytes, publicKey: publicKey) }) {
            checks.append(.init(name: "own charges", passed: false,
                                detail: "the charge of run \(bad.charge.run) round \(bad.charge.round) (\(bad.charge.budget)) is not signed by this silo's identity key: it was edited"))
        } else {
            checks.append(.init(name: "own charges", passed: true, detail: "\(stored.count) charges, each signed by this silo before its release left"))
        }
        do {
            _ = try SiloFilters(adopted: adopted, charges: stored.map(\.charge), maxEpsilon: maxEpsilon)
            checks.append(.init(name: "own filters", passed: true, detail: "\(Set(stored.map(\.charge.budget)).count) budgets replay from \(adopted.count) adopted entries"))
        } catch {
            checks.append(.init(name: "own filters", passed: false, detail: error.message))
        }
        guard let export else { return checks }
        let theirs = export.signedEntries.map(\.entry)
        checks.append(contentsOf: export.verify()
            .map { .init(name: "export \($0.name)", passed: $0.passed, detail: $0.detail) })
        checks.append(compareCharges(theirs.filter { $0.budget.silo == siloID && $0.kind == .charge }, stored.map(\.charge)))
        checks.append(compareAdopted(adopted, theirs))
        checks.append(compareCheckpoint(try store.lastWitnessed(), theirs))
        return checks
    }

    static func compareCharges(_ theirs: [LedgerEntry], _ mine: [SiloCharge]) -> LedgerVerifier.Check {
        for e in theirs {
            guard let mechanism = e.mechanism else {
                return .init(name: "charges agree", passed: false, detail: "entry \(e.seq) is a charge without a mechanism")
            }
            let matching = mine.filter { $0.run == e.run && $0.round == e.round && $0.budget == e.budget }
            guard !matching.isEmpty else {
                return .init(name: "charges agree", passed: false,
                             detail: "entry \(e.seq) charges run \(e.run ?? "?") round \(e.round ?? 0) to \(e.budget), but this silo's ledger has no release for it")
            }
            let covered = matching.contains { m in
                RenyiFilter.displayOrders.allSatisfy { m.mechanism.rdp(order: $0) >= mechanism.rdp(order: $0) * (1 - 1e-9) - 1e-12 }
            }
            guard covered else {
                return .init(name: "charges agree", passed: false,
                             detail: "entry \(e.seq) (run \(e.run ?? "?") round \(e.round ?? 0)) costs more than this silo charged itself for that release")
            }
        }
        let released = Set(theirs.map { "\($0.run ?? "")/\($0.round ?? 0)" })
        let unreleased = mine.filter { !released.contains("\($0.run)/\($0.round)") }.count
        return .init(name: "charges agree", passed: true,
                     detail: "\(theirs.count) coordinator charges each match a release this silo charged; \(unreleased) of this silo's charges have no committed round (charged before sending, never released: the silo's count is the conservative one)")
    }

    static func compareAdopted(_ adopted: [LedgerEntry], _ theirs: [LedgerEntry]) -> LedgerVerifier.Check {
        for e in adopted {
            guard theirs.indices.contains(e.seq), theirs[e.seq].canonicalBytes == e.canonicalBytes else {
                return .init(name: "co-signed entries agree", passed: false, detail: "entry \(e.seq) (\(e.kind.rawValue) of \(e.budget)) that this silo checked and co-signed is missing or different in the export")
            }
        }
        return .init(name: "co-signed entries agree", passed: true, detail: "\(adopted.count) entries of this silo's that it checked and co-signed are in the export unchanged")
    }

    static func compareCheckpoint(_ witnessed: SiloLedgerStore.Witnessed?, _ theirs: [LedgerEntry]) -> LedgerVerifier.Check {
        guard let w = witnessed else { return .init(name: "co-signed checkpoint", passed: true, detail: "this silo has not co-signed a checkpoint yet") }
        guard w.size <= theirs.count else {
            return .init(name: "co-signed checkpoint", passed: false, detail: "this silo co-signed a ledger of \(w.size) entries; the export holds \(theirs.count): it was truncated")
        }
        let root = MerkleTree.root(theirs[0..<w.size].map { MerkleTree.leafHash($0.canonicalBytes) })
        guard root == w.root else {
            return .init(name: "co-signed checkpoint", passed: false, detail: "entries 0–\(w.size - 1) of the export do not have the root this silo co-signed: one was changed, removed or reordered")
        }
        return .init(name: "co-signed checkpoint", passed: true, detail: "the export extends the checkpoint of \(w.size) entries this silo co-signed")
    }
}
