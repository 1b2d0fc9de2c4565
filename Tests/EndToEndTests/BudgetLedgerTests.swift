import ConclaveFederation
import ConclavePrivacy
import ConclaveTesting
import Foundation
import Testing

/// The privacy ledger end to end, with real processes over mutual TLS: a privacy officer registers a budget
/// per silo; runs on the same data spend it; the third run is refused by the silos on their own (the
/// coordinator's check bypassed by a test hook) and the fourth by the coordinator; the CLI shows, lists and
/// verifies the ledger, offline too, and every edit of an export is named; silos co-sign and verify theirs.
@Suite(.serialized) struct BudgetLedgerTests {
    static let z = 2.0, clip = 2.0, delta = 1e-5
    static let spec = """
        rounds = 2
        min_silos = 2
        round_deadline_seconds = 60
        [model]
        architecture = "logreg"
        input_features = 8
        num_classes = 3
        [training]
        learning_rate = 0.1
        [secure_aggregation]
        clip_norm = \(clip)
        phase_timeout_seconds = 10
        [privacy]
        mode = "central"
        noise_multiplier = \(z)
        delta = \(delta)
        """

    /// A cap under which four rounds fit and a fifth does not, found with the filter itself, so two runs of two
    /// rounds fit and a third is refused at its first round.
    static func capForFourRounds() throws -> Double {
        let mechanism = CentralMechanism(z: z, clipNorm: clip, dimension: 27, countStddev: nil).release
        func fits(_ rounds: Int, _ cap: Double) -> Bool {
            guard var f = try? RenyiFilter(epsilonCap: cap, deltaCap: delta) else { return false }
            return (0..<rounds).allSatisfy { _ in if case .charged = f.charge(f.increment(mechanism.rdp)) { true } else { false } }
        }
        var cap = 0.5
        while !fits(4, cap) { cap *= 1.01 }
        try #require(!fits(5, cap), "cap \(cap) admits a fifth round")
        return cap
    }

    /// Enrols privacy officer "po" (with its ledger signing key) and returns its identity directory.
    func enrolOfficer(_ cluster: Cluster) throws -> String {
        let officer = "\(cluster.dir)/officer"
        _ = try cluster.waitFor("the coordinator", timeout: 30) { () -> Bool? in
            try cluster.cli(["user", "add", "po", "--role", "privacy-officer", "--out", "\(cluster.dir)/po.json", "--coordinator", cluster.address]).status == 0 ? true : nil
        }
        let enrolled = try cluster.cli(["user", "enroll", "--bundle", "\(cluster.dir)/po.json", "--identity", officer])
        try #require(enrolled.status == 0, "\(enrolled.err)")
        return officer
    }

    func startRun(_ cluster: Cluster, _ name: String) throws -> String {
        try cluster.write("\(name).toml", "name = \"\(name)\"\n" + Self.spec)
        let started = try cluster.waitFor("the coordinator to take run \(name)", timeout: 30) {
            try? cluster.json(["run", "start", "--spec", "\(cluster.dir)/\(name).toml", "--json", "--coordinator", cluster.address])
        }
        return try #require(started["run_id"] as? String)
    }

    func waitForStatus(_ cluster: Cluster, _ runID: String, _ wanted: String) throws -> [String: Any] {
        try cluster.waitFor("run \(runID) to end \(wanted)", timeout: 120) { () -> [String: Any]? in
            let s = try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])
            if let status = s?["status"] as? String, status != "running", status != "pending", status != wanted {
                throw TestFailure("run \(runID) ended \(status): \(s?["message"] ?? "")")
            }
            return s?["status"] as? String == wanted ? s : nil
        }
    }

    @Test(.timeLimit(.minutes(6))) func budgetsHoldAcrossRunsOnBothSidesAndTheLedgerVerifies() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-budget"))
        defer { cluster.stopAll() }
        let cap = try Self.capForFourRounds()
        try cluster.startCoordinator(requireBudgets: true)
        for i in 0..<2 { try cluster.writeBlobSilo(i) }

        // A privacy officer, enrolled with a ledger signing key.
        let officer = try enrolOfficer(cluster)
        let asOfficer = ["CONCLAVE_IDENTITY": officer]
        let target = ["--coordinator", cluster.address]
        let register = { (silo: String) in
            try cluster.cli(["budget", "register", "--silo", silo, "--dataset", "default", "--unit", "silo", "--epsilon", "\(cap)",
                             "--delta", "\(Self.delta)"] + target, environment: asOfficer)
        }
        // An operator may not register; an officer may, once per budget.
        let byOperator = try cluster.cli(["budget", "register", "--silo", "silo-0", "--dataset", "default", "--unit", "silo",
                                          "--epsilon", "1", "--delta", "1e-5"] + target)
        #expect(byOperator.status != 0 && byOperator.err.contains("privacy-officer"), "\(byOperator.err)")
        for silo in ["silo-0", "silo-1"] {
            let r = try register(silo)
            try #require(r.status == 0, "\(r.err)")
        }
        let twice = try register("silo-0")
        #expect(twice.status != 0 && twice.err.contains("already registered"), "\(twice.err)")

        for i in 0..<2 { try cluster.start("silo\(i)", "conclave-client", ["--config", "\(cluster.dir)/silo\(i).toml"]) }
        var completed = [String]()
        for run in ["first", "second"] {
            let id = try startRun(cluster, run)
            _ = try waitForStatus(cluster, id, "completed")
            completed.append(id)
        }

        // plan: before a third run, neither budget affords a round of it.
        let plan = try cluster.json(["budget", "plan", "--spec", "\(cluster.dir)/first.toml", "--json"] + target)
        let planned = try #require(plan["budgets"] as? [[String: Any]])
        #expect(plan["fits"] as? Bool == false && planned.count == 2, "\(plan)")
        #expect(planned.allSatisfy { $0["fits"] as? Bool == false && $0["max_rounds"] as? Int == 0 && $0["registered"] as? Bool == true }, "\(planned)")

        // Third run: the coordinator's check is bypassed (test hook); each silo refuses on its own filter.
        _ = try cluster.stop("coordinator")
        try cluster.startCoordinator(environment: ["CONCLAVE_TEST_BYPASS_BUDGET_CHECK": "1"], requireBudgets: true)
        let third = try startRun(cluster, "third")
        let thirdStatus = try waitForStatus(cluster, third, "budget-exhausted")
        #expect((thirdStatus["message"] as? String)?.contains("own privacy budget") == true, "\(thirdStatus)")
        #expect(cluster.log("silo0").contains("privacy-budget"))
        // Fourth run: the coordinator refuses (and records the refusals) before any silo is asked.
        _ = try cluster.stop("coordinator")
        try cluster.startCoordinator(requireBudgets: true)
        let fourth = try startRun(cluster, "fourth")
        let fourthStatus = try waitForStatus(cluster, fourth, "budget-exhausted")
        #expect((fourthStatus["message"] as? String)?.contains("cannot afford") == true, "\(fourthStatus)")

        // show: both budgets spent by two runs of two rounds, exhausted, within their caps.
        let shown = try cluster.json(["budget", "show", "--json"] + target)
        let budgets = try #require(shown["budgets"] as? [[String: Any]])
        #expect(budgets.count == 2)
        for b in budgets {
            #expect(b["releases"] as? Int == 4 && b["runs"] as? Int == 2 && b["status"] as? String == "exhausted", "\(b)")
            let spent = try #require(b["epsilon_spent"] as? Double)
            #expect(spent > 0 && spent <= cap && (b["epsilon_remaining"] as? Double).map { abs($0 - (cap - spent)) < 1e-9 } == true, "\(b)")
        }
        // history: registration, four charges with their parameters, the fourth run's refusal.
        let history = try cluster.json(["budget", "history", "--silo", "silo-0", "--dataset", "default", "--json"] + target)
        let entries = try #require(history["entries"] as? [[String: Any]])
        #expect(entries.map { $0["kind"] as? String ?? "" } == ["registration", "charge", "charge", "charge", "charge", "refusal"], "\(entries)")
        let charge = try #require(entries.first { $0["kind"] as? String == "charge" })
        let parameters = try #require(charge["parameters"] as? [String: Double])
        #expect(parameters["sampling_rate"] == 1 && parameters["steps"] == 1 && abs((parameters["noise_multiplier"] ?? 0) - Self.z) < 0.01)
        #expect((charge["model_sha256"] as? String)?.count == 64)

        // Every charge was co-signed by its silo (they do while they wait), and the whole ledger verifies.
        let verified = try cluster.waitFor("the silos to co-sign", timeout: 30) { () -> (status: Int32, out: String, err: String)? in
            let r = try cluster.cli(["budget", "verify"] + target)
            return r.status == 0 ? r : nil
        }
        #expect(verified.out.contains("ok   charges: 8 charges recomputed") && verified.out.contains("ok   rounds: 4 committed rounds: each of the 8 budgeted releases has its charge"), "\(verified.out)")
        let ledger = "\(cluster.dir)/ledger.json"
        #expect(try cluster.cli(["budget", "export", "--out", ledger] + target).status == 0)
        #expect(try cluster.cli(["budget", "verify", "--ledger", ledger]).status == 0)
        for i in 0..<2 {
            let own = try cluster.run("conclave-client", ["budget", "verify", "--config", "\(cluster.dir)/silo\(i).toml", "--against", ledger])
            #expect(own.status == 0, "silo \(i): \(own.out)\(own.err)")
            let view = try cluster.run("conclave-client", ["budget", "show", "--config", "\(cluster.dir)/silo\(i).toml", "--json"])
            let mine = try #require(((try JSONSerialization.jsonObject(with: Data(view.out.utf8)) as? [String: Any])?["budgets"] as? [[String: Any]])?.first)
            // The silo's own count: the same four releases (its third-run refusal charged nothing).
            #expect(mine["releases"] as? Int == 4 && (mine["epsilon_cap"] as? Double).map { abs($0 - cap) < 1e-12 } == true, "\(mine)")
        }

        try checkReport(cluster, ledger: ledger)

        // A released model carries its proof of charge, checked offline; an edited proof is named.
        let proof = "\(cluster.dir)/proof.json"
        let exported = try cluster.cli(["model", "export", "--run", completed[0], "--out", "\(cluster.dir)/m.safetensors",
                                        "--proof-of-charge", proof] + target)
        #expect(exported.status == 0, "\(exported.err)")
        let checked = try cluster.cli(["budget", "verify", "--proof", proof])
        #expect(checked.status == 0 && checked.out.contains("2 charges of run \(completed[0]) round 2"), "\(checked.out)\(checked.err)")
        let forged = try String(contentsOfFile: proof, encoding: .utf8).replacingOccurrences(of: "\"round\" : 2", with: "\"round\" : 1")
        try forged.write(toFile: proof, atomically: true, encoding: .utf8)
        let refused = try cluster.cli(["budget", "verify", "--proof", proof])
        #expect(refused.status == 1 && refused.out.contains("FAIL"), "\(refused.out)")

        // Tampering with the export is named: an edited noise multiplier, a deleted entry.
        var export = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ledger))) as? [String: Any])
        var list = try #require(export["entries"] as? [[String: Any]])
        let target2 = list.firstIndex { (($0["entry"] as? [String: Any])?["kind"] as? String) == "charge" }!
        var edited = list
        var entry = edited[target2]["entry"] as! [String: Any]
        var mechanism = entry["mechanism"] as! [String: Any]
        var gaussian = try #require(mechanism["centralGaussian"] as? [String: Any])
        gaussian["noiseMultiplier"] = 20.0
        mechanism["centralGaussian"] = gaussian
        entry["mechanism"] = mechanism
        edited[target2]["entry"] = entry
        for (name, entries) in [("edited", edited), ("deleted", Array(list.dropFirst(3)))] {
            export["entries"] = entries
            let file = "\(cluster.dir)/\(name).json"
            try JSONSerialization.data(withJSONObject: export).write(to: URL(fileURLWithPath: file))
            let r = try cluster.cli(["budget", "verify", "--ledger", file])
            #expect(r.status == 1 && r.out.contains("FAIL") && r.out.contains("entry"), "\(name): \(r.out)")
            let bySilo = try cluster.run("conclave-client", ["budget", "verify", "--config", "\(cluster.dir)/silo0.toml", "--against", file])
            #expect(bySilo.status == 1, "\(name): \(bySilo.out)")
        }
        list.removeAll()

        // An amendment raises silo-0's cap: a new epoch, visible in show and history.
        let amended = try cluster.cli(["budget", "amend", "--silo", "silo-0", "--dataset", "default", "--unit", "silo",
                                       "--epsilon", "\(cap * 2)", "--reason", "second study approved"] + target, environment: asOfficer)
        #expect(amended.status == 0, "\(amended.err)")
        let after = try cluster.json(["budget", "show", "--silo", "silo-0", "--json"] + target)
        let b0 = try #require((after["budgets"] as? [[String: Any]])?.first)
        #expect(b0["status"] as? String == "amended" && (b0["epsilon_cap"] as? Double).map { abs($0 - cap * 2) < 1e-12 } == true, "\(b0)")
    }

    /// kill -9 of the coordinator between drafting a round's charges and committing them, and of an agent
    /// between its charge and its send: no release goes uncharged, none is charged twice, and both sides'
    /// ledgers agree after the restarts.
    @Test(.timeLimit(.minutes(5))) func crashesBetweenChargeAndReleaseNeitherLoseNorDoubleACharge() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-budget-crash"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator(environment: ["CONCLAVE_TEST_CRASH_AT": "ledger-charged"], requireBudgets: true)
        for i in 0..<2 { try cluster.writeBlobSilo(i) }
        let officer = try enrolOfficer(cluster)
        let target = ["--coordinator", cluster.address]
        for silo in ["silo-0", "silo-1"] {
            let r = try cluster.cli(["budget", "register", "--silo", silo, "--dataset", "default", "--unit", "silo", "--epsilon", "50",
                                     "--delta", "\(Self.delta)"] + target, environment: ["CONCLAVE_IDENTITY": officer])
            try #require(r.status == 0, "\(r.err)")
        }
        try cluster.start("silo0", "conclave-client", ["--config", "\(cluster.dir)/silo0.toml"], environment: ["CONCLAVE_TEST_CRASH_AT": "agent-charged"])
        try cluster.start("silo1", "conclave-client", ["--config", "\(cluster.dir)/silo1.toml"])
        let runID = try startRun(cluster, "crash")

        // The agent dies after charging round 1, before anything left; restarted, it reuses that charge.
        let agent = try #require(cluster.processes["silo0"])
        _ = try cluster.waitFor("silo-0 to die at its charge", timeout: 60) { agent.isRunning ? nil : true }
        #expect(cluster.log("silo0").contains("crash hook: SIGKILL at agent-charged"))
        try cluster.start("silo0", "conclave-client", ["--config", "\(cluster.dir)/silo0.toml"])
        // The coordinator dies with round 1's charges drafted but not committed; restarted, it commits them once.
        let coordinator = try #require(cluster.processes["coordinator"])
        _ = try cluster.waitFor("the coordinator to die between charge and commit", timeout: 60) { coordinator.isRunning ? nil : true }
        #expect(cluster.log("coordinator").contains("crash hook: SIGKILL at ledger-charged"))
        try cluster.startCoordinator(requireBudgets: true)
        _ = try waitForStatus(cluster, runID, "completed")

        let ledger = "\(cluster.dir)/ledger.json"
        _ = try cluster.waitFor("the silos to co-sign", timeout: 30) { () -> Bool? in
            try cluster.cli(["budget", "verify"] + target).status == 0 ? true : nil
        }
        #expect(try cluster.cli(["budget", "export", "--out", ledger] + target).status == 0)
        let export = try LedgerExport.decode(Data(contentsOf: URL(fileURLWithPath: ledger)), source: ledger)
        let charges = export.signedEntries.map(\.entry).filter { $0.kind == .charge }
        // Exactly one charge per silo per committed round, each round's bound to its model version.
        #expect(charges.count == 4 && Set(charges.map { "\($0.budget.silo)/\($0.round ?? 0)" }).count == 4, "\(charges.map(\.seq))")
        #expect(charges.allSatisfy { $0.run == runID && $0.modelSHA256?.count == 64 })
        for i in 0..<2 {
            let own = try cluster.run("conclave-client", ["budget", "verify", "--config", "\(cluster.dir)/silo\(i).toml", "--against", ledger])
            #expect(own.status == 0 && own.out.contains("4 coordinator charges") == false && own.out.contains("2 coordinator charges each match"), "silo \(i): \(own.out)")
            let view = try cluster.run("conclave-client", ["budget", "show", "--config", "\(cluster.dir)/silo\(i).toml", "--json"])
            let mine = try #require(((try JSONSerialization.jsonObject(with: Data(view.out.utf8)) as? [String: Any])?["budgets"] as? [[String: Any]])?.first)
            #expect(mine["releases"] as? Int == 2, "silo \(i) charged \(mine["releases"] ?? "?") releases for two rounds: \(view.out)")
        }
    }

    /// The report, rendered by a real headless browser (Debian's Chromium): the page parses, holds every
    /// section, the budgets and the plot, and renders to a screenshot.
    func checkReport(_ cluster: Cluster, ledger: String) throws {
        let chromium = "/usr/bin/chromium"
        try #require(FileManager.default.isExecutableFile(atPath: chromium), "Chromium missing: install chromium (make test does)")
        let report = "\(cluster.dir)/report.html"
        let made = try cluster.cli(["budget", "report", "--out", report, "--coordinator", cluster.address])
        #expect(made.status == 0 && made.out.contains("the ledger verifies"), "\(made.out)\(made.err)")
        let offline = try cluster.cli(["budget", "report", "--out", "\(cluster.dir)/silo0.html", "--ledger", ledger, "--silo", "silo-0"])
        #expect(offline.status == 0, "\(offline.err)")
        func browse(_ args: [String]) throws -> String {
            try Cluster.output(of: chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                              "--user-data-dir=\(cluster.dir)/chromium"] + args)
        }
        let dom = try browse(["--dump-dom", "file://\(report)"])
        for needle in ["Privacy budget report", "1. Scope and threat model", "silo-0/default/silo", "silo-1/default/silo", "<polyline",
                       "6. Registrations and amendments", "7. Accountant", "9. How to re-verify offline", "the ledger verifies", "Refusals (2)"] {
            #expect(dom.contains(needle), "the rendered report lacks \(needle)")
        }
        let png = "\(cluster.dir)/report.png"
        _ = try browse(["--window-size=1200,2400", "--screenshot=\(png)", "file://\(report)"])
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(size > 50_000, "the screenshot is \(size) bytes")
    }
}
