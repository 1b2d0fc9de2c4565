import ArgumentParser
import ConclaveAdminClient
import ConclaveCrypto
import ConclaveIdentity
import ConclavePrivacy
import ConclaveSupport
import ConclaveWire
import Foundation
import GRPCCore
import SwiftProtobuf

/// `conclave budget`: privacy budgets per (silo, dataset, unit) and the ledger that enforces them across runs.
struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget", abstract: "Privacy budgets and their ledger.",
        subcommands: [Register.self, Amend.self, Show.self, History.self, Plan.self, Export.self, Verify.self, Report.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fix a budget's cap (ε, δ) before any charge (privacy officer; signed with your signing.key).")
        @Option(help: "Silo id.") var silo: String
        @Option(help: "Dataset name (the silo's `dataset`).") var dataset: String
        @Option(help: "record (one record of the dataset) or silo (the silo's whole contribution).") var unit: String
        @Option(help: "ε cap.") var epsilon: Double
        @Option(help: "δ cap.") var delta: Double
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let seq = try await appendOfficerEntry(.with {
                $0.kind = "registration"; $0.silo = silo; $0.dataset = dataset; $0.unit = unit; $0.epsilon = epsilon; $0.delta = delta
            }, target: target)
            print("registered \(silo)/\(dataset)/\(unit): ε ≤ \(epsilon) at δ = \(delta) (ledger entry \(seq))")
        }
    }

    struct Amend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a budget's ε cap: a new epoch, shown in every report as a weakened guarantee (privacy officer).")
        @Option(help: "Silo id.") var silo: String
        @Option(help: "Dataset name.") var dataset: String
        @Option(help: "record or silo.") var unit: String
        @Option(help: "The new ε cap.") var epsilon: Double
        @Option(help: "Why (shown in the report).") var reason: String
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let seq = try await appendOfficerEntry(.with {
                $0.kind = "amendment"; $0.silo = silo; $0.dataset = dataset; $0.unit = unit; $0.epsilon = epsilon; $0.reason = reason
            }, target: target)
            print("amended \(silo)/\(dataset)/\(unit): ε ≤ \(epsilon) from now on (ledger entry \(seq))")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each budget's cap, what it spent and what remains.")
        @Option(help: "Only this silo's budgets.") var silo: String?
        @Option(help: "Only this dataset's budgets.") var dataset: String?
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let export = try await fetchExport(target)
            let budgets = try LedgerSummary.budgets(export.signedEntries.map(\.entry)).filter {
                (silo == nil || $0.budget.silo == silo) && (dataset == nil || $0.budget.dataset == dataset)
            }
            if json {
                printJSON(["budgets": budgets.map { b -> [String: Any] in
                    ["silo": b.budget.silo, "dataset": b.budget.dataset, "unit": b.budget.unit, "epsilon_cap": b.epsilonCap,
                     "delta_cap": b.deltaCap, "epsilon_spent": b.epsilonSpent, "epsilon_remaining": b.epsilonRemaining,
                     "releases": b.releases, "runs": b.runs.count, "status": b.status, "order": b.order,
                     "rdp_spent": b.rdpSpent, "rdp_bound": b.bound, "refusals": b.refusals, "epoch": b.epoch]
                }])
                return
            }
            guard !budgets.isEmpty else { print("no budgets registered\(silo.map { " for silo \($0)" } ?? "")"); return }
            print("budget                                   cap ε      δ         spent ε  remaining  releases  runs  status")
            for b in budgets {
                print(String(format: "%-40@ %7.3f  %8.1e  %9.4f  %9.4f  %8d  %4d  %@", b.budget.description.padding(toLength: 40, withPad: " ", startingAt: 0) as NSString,
                             b.epsilonCap, b.deltaCap, b.epsilonSpent, b.epsilonRemaining, b.releases, b.runs.count, b.status))
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every entry of a budget: registration, charges, refusals, amendments.")
        @Option(help: "Silo id.") var silo: String
        @Option(help: "Dataset name.") var dataset: String
        @Option(help: "record or silo (default: both).") var unit: String?
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let export = try await fetchExport(target)
            let entries = export.signedEntries.map(\.entry)
            let lines = LedgerSummary.history(entries, silo: silo, dataset: dataset, unit: unit)
            if json {
                printJSON(["entries": lines.map { line -> [String: Any] in
                    let e = line.entry
                    return ["seq": e.seq, "time": e.time, "run": e.run as Any? ?? NSNull(), "round": e.round as Any? ?? NSNull(),
                            "kind": e.kind.rawValue, "unit": e.budget.unit,
                            "mechanism": e.mechanism?.name as Any? ?? NSNull(),
                            "parameters": e.mechanism?.parameters ?? [:], "epsilon": line.epsilon,
                            "epsilon_cumulative": e.epsilonCumulative as Any? ?? NSNull(),
                            "epsilon_cap": e.epsilonCap as Any? ?? NSNull(), "reason": e.reason as Any? ?? NSNull(),
                            "actor": e.actor as Any? ?? NSNull(), "model_sha256": e.modelSHA256 as Any? ?? NSNull()]
                }])
                return
            }
            guard !lines.isEmpty else { throw CLIError("no ledger entries for \(silo)/\(dataset)\(unit.map { "/\($0)" } ?? "")") }
            for line in lines {
                let e = line.entry
                let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: e.time))
                switch e.kind {
                case .registration, .amendment:
                    print("\(e.seq)  \(when)  \(e.kind.rawValue) \(e.budget): ε ≤ \(e.epsilonCap ?? 0) at δ = \(e.deltaCap ?? 0) by \(e.actor ?? "?")\(e.reason.map { " — \($0)" } ?? "")")
                case .charge, .refusal:
                    let params = (e.mechanism?.parameters ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                    let tail = e.kind == .charge ? String(format: "ε %.4f, cumulative %.4f", line.epsilon, e.epsilonCumulative ?? 0) : "REFUSED: \(e.reason ?? "")"
                    print("\(e.seq)  \(when)  \(e.kind.rawValue) \(e.budget) run \(e.run ?? "?") round \(e.round ?? 0): \(e.mechanism?.name ?? "?") \(params); \(tail)")
                }
            }
        }
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Would this run fit every budget it touches? ε after the run, and the most rounds that fit (nothing is charged).")
        @Option(help: "The run spec (TOML).") var spec: String
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let text: String
            do { text = try String(contentsOfFile: spec, encoding: .utf8) } catch { throw CLIError("cannot read \(spec): \(error.localizedDescription)") }
            let address = try target.address()
            let identity = try target.identityDirectory()
            let reply: Conclave_V1_BudgetPlanReply
            do {
                reply = try await AdminClient.withBudget(address, identity: identity) { client in
                    try await client.plan(.with { $0.specToml = text; $0.specName = spec })
                }
            } catch let error as RPCError {
                throw CLIError(describe(error, address: address, identity: identity))
            }
            if json {
                print(String(decoding: reply.planJson, as: UTF8.self))
                return
            }
            guard let plan = try JSONSerialization.jsonObject(with: reply.planJson) as? [String: Any],
                  let budgets = plan["budgets"] as? [[String: Any]] else { throw CLIError("the coordinator's plan is malformed") }
            guard !budgets.isEmpty else { print("run '\(plan["run"] ?? "")' releases nothing under a privacy budget (no [privacy] table, or no silos yet)"); return }
            print("run '\(plan["run"] ?? "")', \(plan["rounds"] ?? 0) rounds: \(plan["fits"] as? Bool == true ? "fits every budget" : "does NOT fit every budget")")
            for b in budgets {
                let key = "\(b["silo"] ?? "")/\(b["dataset"] ?? "")/\(b["unit"] ?? "")"
                guard b["registered"] as? Bool == true else {
                    print("  \(key): no budget registered (ε after the run would be \(String(format: "%.3f", b["epsilon_after"] as? Double ?? 0)))")
                    continue
                }
                print(String(format: "  %@: cap ε ≤ %g, spent %.3f, after the run %.3f, %@ (at most %d rounds fit)", key,
                             b["epsilon_cap"] as? Double ?? 0, b["epsilon_spent"] as? Double ?? 0, b["epsilon_after"] as? Double ?? 0,
                             b["fits"] as? Bool == true ? "fits" : "does not fit", b["max_rounds"] as? Int ?? 0))
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the whole ledger for offline audit: entries, co-signatures, checkpoints, public keys.")
        @Option(help: "Output file (JSON).") var out: String
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let export = try await fetchExport(target)
            do { try export.encoded().write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                throw CLIError("cannot write \(out): \(error.localizedDescription)")
            }
            print("wrote \(export.entries.count) entries and \(export.checkpoints.count) checkpoints to \(out)")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the ledger (online, or offline on an export): chain, signatures, every charge recomputed, filters, checkpoints.")
        @Option(help: "A ledger export (JSON) to verify offline; without it the coordinator's ledger is fetched.") var ledger: String?
        @Option(help: "Verify a model's proof of charge (from `conclave model export --proof-of-charge`) instead.") var proof: String?
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            if let proof {
                let decoded: ProofOfCharge
                do { decoded = try JSONDecoder().decode(ProofOfCharge.self, from: Data(contentsOf: URL(fileURLWithPath: proof))) } catch {
                    throw CLIError("\(proof) is not a Conclave proof of charge (unreadable, malformed or truncated): \(error)")
                }
                let checks = decoded.verify()
                for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
                if !checks.allSatisfy(\.passed) { throw ExitCode.failure }
                return
            }
            let export: LedgerExport
            if let ledger {
                let data: Data
                do { data = try Data(contentsOf: URL(fileURLWithPath: ledger)) } catch {
                    throw CLIError("cannot read \(ledger): \(error.localizedDescription)")
                }
                export = try LedgerExport.decode(data, source: ledger)
            } else {
                export = try await fetchExport(target)
            }
            let checks = export.verify()
            let passed = checks.allSatisfy(\.passed)
            if json {
                printJSON(["passed": passed, "entries": export.entries.count, "origin": export.origin,
                           "checks": checks.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] },
                           "keys": export.keys.mapValues { Self.fingerprint($0) }])
            } else {
                for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
                for (signer, key) in export.keys.sorted(by: { $0.key < $1.key }) { print("key  \(signer): \(Self.fingerprint(key))") }
            }
            if !passed { throw ExitCode.failure }
        }

        /// SHA-256 of the key, first 16 hex digits: to compare with what the signer publishes.
        static func fingerprint(_ key: Data) -> String {
            var h = SHA256()
            key.withUnsafeBytes { h.update($0) }
            return Array(h.finalize().prefix(8)).hexString
        }
    }
}

extension BudgetCommand {
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a self-contained, printable HTML report of the budgets for a data-protection impact assessment.")
        @Option(help: "Output file (HTML).") var out: String
        @Option(help: "Only this silo's budgets.") var silo: String?
        @Option(help: "Only this dataset's budgets.") var dataset: String?
        @Option(help: "Report on a ledger export (JSON) instead of the coordinator's ledger.") var ledger: String?
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            let export: LedgerExport
            if let ledger {
                let data: Data
                do { data = try Data(contentsOf: URL(fileURLWithPath: ledger)) } catch { throw CLIError("cannot read \(ledger): \(error.localizedDescription)") }
                export = try LedgerExport.decode(data, source: ledger)
            } else {
                export = try await fetchExport(target)
            }
            let checks = export.verify()
            let html = try BudgetReport.html(export: export, checks: checks, silo: silo, dataset: dataset, now: Date())
            do { try Data(html.utf8).write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                throw CLIError("cannot write \(out): \(error.localizedDescription)")
            }
            print("wrote \(out) (\(export.entries.count) ledger entries; \(checks.allSatisfy(\.passed) ? "the ledger verifies" : "THE LEDGER DOES NOT VERIFY"))")
        }
    }
}

/// The coordinator's ledger, as an export.
func fetchExport(_ target: CoordinatorOption) async throws -> LedgerExport {
    let address = try target.address()
    let identity = try target.identityDirectory()
    let reply: Conclave_V1_LedgerExportReply
    do {
        // A ledger grows with every release: allow a large reply (the transport's default is 4 MiB, used for
        // responses through `maxRequestMessageBytes`).
        var options = CallOptions.defaults
        options.maxRequestMessageBytes = 512 << 20
        options.maxResponseMessageBytes = 512 << 20
        let call = options
        reply = try await AdminClient.withBudget(address, identity: identity) { try await $0.export(.init(), options: call) }
    } catch let error as RPCError {
        throw CLIError(describe(error, address: address, identity: identity))
    }
    return try LedgerExport.decode(reply.exportJson, source: "the coordinator's ledger export")
}

/// Draft → sign with the officer's signing.key → append; drafted again if the ledger moved in between.
func appendOfficerEntry(_ request: Conclave_V1_BudgetDraftRequest, target: CoordinatorOption) async throws -> UInt64 {
    let address = try target.address()
    guard let identity = try target.identityDirectory() else {
        throw CLIError("budgets are registered and amended by a privacy officer: pass --identity DIR (or set $CONCLAVE_IDENTITY) with the officer's enrolled identity")
    }
    let keyPath = identity.path + "/signing.key"
    for attempt in 1...5 {
        do {
            return try await AdminClient.withBudget(address, identity: identity) { client in
                // Drafting checks the caller's role; the officer's key signs the exact bytes drafted.
                let draft = try await client.draft(request)
                guard FileManager.default.fileExists(atPath: keyPath) else {
                    throw CLIError("\(keyPath) is missing: the officer's ledger signing key is made by 'conclave user enroll'")
                }
                let signing = try IdentityKeyFile.loadOrCreate(path: keyPath).key
                return try await client.append(.with {
                    $0.entry = draft.entry
                    $0.signature = Data(signing.sign(Array(draft.entry)))
                }).seq
            }
        } catch let error as RPCError where error.code == .aborted && attempt < 5 {
            continue
        } catch let error as RPCError {
            throw CLIError(describe(error, address: address, identity: identity))
        }
    }
    throw CLIError("the ledger kept moving; try again")
}
