import ConclaveCrypto
import ConclavePrivacy
import Foundation

/// `conclave budget report`: one self-contained, printable HTML page for a data-protection impact assessment
/// (GDPR Art. 35(7)(d) evidence): scope and threat model, each budget's cap, spent and remaining, every
/// release, refusal and amendment, the accountant, how to re-verify offline, and an SVG plot of cumulative ε.
enum BudgetReport {
    static let accountant = "Conclave RDP accountant, ledger format conclave-ledger-v1: subsampled Gaussian (Mironov, Talwar & Zhang 2019), "
        + "distributed discrete Gaussian (Kairouz, Liu & Steinke 2021), RDP → (ε, δ) by Canonne, Kamath & Steinke (2020); "
        + "cross-run enforcement by a Rényi filter at one order pinned per budget (Feldman & Zrnic 2021)"

    static func html(export: LedgerExport, checks: [LedgerVerifier.Check], silo: String?, dataset: String?, now: Date) throws -> String {
        let all = export.signedEntries
        let entries = all.map(\.entry).filter { (silo == nil || $0.budget.silo == silo) && (dataset == nil || $0.budget.dataset == dataset) }
        let budgets = try LedgerSummary.budgets(all.map(\.entry)).filter {
            (silo == nil || $0.budget.silo == silo) && (dataset == nil || $0.budget.dataset == dataset)
        }
        let signatures = Dictionary(all.map { ($0.entry.seq, $0.signatures) }, uniquingKeysWith: { a, _ in a })
        let passed = checks.allSatisfy(\.passed)
        let checkpoint = export.ledgerCheckpoints.last
        var h = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Conclave privacy budget report</title>
            <style>
            body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#1b1b1b;line-height:1.45}
            h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
            table{border-collapse:collapse;width:100%;font-size:.85em;margin:.6em 0}th,td{border:1px solid #d0d0d0;padding:.3em .45em;text-align:left;vertical-align:top}
            th{background:#f2f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#0a6b2d;font-weight:600}.fail{color:#b00020;font-weight:600}
            .warn{background:#fff4e5}.muted{color:#666}code{font-size:.9em}svg{border:1px solid #d0d0d0;background:#fff}
            @media print{body{margin:0;max-width:none}h2{page-break-after:avoid}table,svg{page-break-inside:avoid}}
            </style></head><body>
            <h1>Privacy budget report</h1>
            <p class="muted">Generated \(esc(iso(now))) by conclave from the ledger <code>\(esc(export.origin))</code>
            (\(all.count) entries\(checkpoint.map { ", newest checkpoint of size \($0.size), root <code>\(Data($0.root).base64EncodedString())</code>, signed by \($0.signatures.keys.sorted().map(esc).joined(separator: ", "))" } ?? "")).
            Scope: \(silo.map { "silo <b>\(esc($0))</b>" } ?? "every silo")\(dataset.map { ", dataset <b>\(esc($0))</b>" } ?? "").
            Verification: <span class="\(passed ? "ok" : "fail")">\(passed ? "the ledger verifies" : "THE LEDGER DOES NOT VERIFY")</span>.</p>
            <h2>1. Scope and threat model</h2>
            <ul>
            <li><b>Privacy unit.</b> A budget belongs to the data: one per (silo, dataset, unit). Unit <code>record</code>: one record of the silo's dataset (DP-SGD inside the silo: Poisson sampling, per-example clipping, Gaussian noise). Unit <code>silo</code>: the silo's whole contribution (central DP-FedAvg, or distributed discrete Gaussian noise added by the silos under secure aggregation).</li>
            <li><b>Protected against.</b> The coordinator (it only ever sees the masked sum of updates under secure aggregation), the other silos, and anyone who receives the trained models. Each silo's agent checks its own copy of every budget and refuses a release on its own, so its guarantee does not depend on the coordinator's honesty.</li>
            <li><b>Charged before release, on both sides.</b> The silo signs and records its charge before any data-dependent message leaves it; the coordinator records the charge in the same transaction that commits the round's model version. A crash can delay a release, never release uncharged, never charge twice.</li>
            <li><b>Tamper evidence.</b> Entries are hash-chained and committed to an RFC 9162 Merkle tree; the coordinator signs checkpoints and each silo co-signs a checkpoint only after checking it extends the last one it signed.</li>
            </ul>
            <h2>2. Budgets</h2>
            <table><tr><th>Budget (silo/dataset/unit)</th><th>Cap ε</th><th>δ</th><th>Order α*</th><th>Spent ε</th><th>Remaining ε</th><th>Releases</th><th>Runs</th><th>Refusals</th><th>Status</th></tr>
            """
        for b in budgets {
            h += "<tr\(b.epoch > 0 ? " class=\"warn\"" : "")><td>\(esc(b.budget.description))</td><td class=\"n\">\(f(b.epsilonCap))</td><td class=\"n\">\(String(format: "%.0e", b.deltaCap))</td>"
                + "<td class=\"n\">\(f(b.order))</td><td class=\"n\">\(f(b.epsilonSpent))</td><td class=\"n\">\(f(b.epsilonRemaining))</td>"
                + "<td class=\"n\">\(b.releases)</td><td class=\"n\">\(b.runs.count)</td><td class=\"n\">\(b.refusals)</td><td>\(esc(b.status))\(b.epoch > 0 ? " (epoch \(b.epoch))" : "")</td></tr>\n"
        }
        h += "</table>\n<p class=\"muted\">The guarantee is the cap: every admitted history is (ε cap, δ)-DP for its unit, whatever order the runs were chosen in. \"Spent\" is the accounting value, ε at δ of the RDP spent (a DP statement for a history fixed in advance). Rows shaded were amended: from the amendment on, the guarantee is the new cap.</p>\n"
        h += "<h2>3. Cumulative ε over time</h2>\n" + plot(entries, budgets) + "\n"
        let charges = entries.filter { $0.kind == .charge }
        h += "<h2>4. Releases (\(charges.count))</h2>\n<table><tr><th>#</th><th>Time (UTC)</th><th>Run</th><th>Round</th><th>Budget</th><th>Mechanism</th><th>z</th><th>q</th><th>Steps</th><th>ε of release</th><th>Cumulative ε</th><th>Model SHA-256</th><th>Signatures</th></tr>\n"
        let history = LedgerSummary.historyAll(all.map(\.entry))
        for e in charges {
            let p = e.mechanism?.parameters ?? [:]
            let signers = (signatures[e.seq] ?? [:]).keys.sorted()
            let cosigned = signers.contains("silo/\(e.budget.silo)")
            h += "<tr><td class=\"n\">\(e.seq)</td><td>\(esc(iso(Date(timeIntervalSince1970: e.time))))</td><td>\(esc(e.run ?? ""))</td><td class=\"n\">\(e.round ?? 0)</td>"
                + "<td>\(esc(e.budget.description))</td><td>\(esc(e.mechanism?.name ?? ""))</td><td class=\"n\">\(f(p["noise_multiplier"] ?? 0))</td>"
                + "<td class=\"n\">\(f(p["sampling_rate"] ?? 0))</td><td class=\"n\">\(String(format: "%.0f", p["steps"] ?? 0))</td><td class=\"n\">\(f(history[e.seq] ?? 0))</td>"
                + "<td class=\"n\">\(f(e.epsilonCumulative ?? 0))</td><td><code>\(esc(String((e.modelSHA256 ?? "").prefix(12))))</code></td>"
                + "<td class=\"\(cosigned ? "ok" : "fail")\">coordinator\(cosigned ? " + silo" : " (silo co-signature missing)")</td></tr>\n"
        }
        h += "</table>\n"
        let refusals = entries.filter { $0.kind == .refusal }
        h += "<h2>5. Refusals (\(refusals.count))</h2>\n"
        h += refusals.isEmpty ? "<p>No release was refused.</p>\n" : "<table><tr><th>#</th><th>Time (UTC)</th><th>Run</th><th>Round</th><th>Budget</th><th>Reason</th></tr>\n" + refusals.map {
            "<tr><td class=\"n\">\($0.seq)</td><td>\(esc(iso(Date(timeIntervalSince1970: $0.time))))</td><td>\(esc($0.run ?? ""))</td><td class=\"n\">\($0.round ?? 0)</td><td>\(esc($0.budget.description))</td><td>\(esc($0.reason ?? ""))</td></tr>\n"
        }.joined() + "</table>\n"
        let policy = entries.filter { $0.kind == .registration || $0.kind == .amendment }
        h += "<h2>6. Registrations and amendments</h2>\n<table><tr><th>#</th><th>Time (UTC)</th><th>Kind</th><th>Budget</th><th>Cap ε</th><th>δ</th><th>Privacy officer</th><th>Reason</th></tr>\n"
        for e in policy {
            h += "<tr\(e.kind == .amendment ? " class=\"warn\"" : "")><td class=\"n\">\(e.seq)</td><td>\(esc(iso(Date(timeIntervalSince1970: e.time))))</td><td>\(e.kind == .amendment ? "amendment (guarantee changed from here)" : "registration")</td>"
                + "<td>\(esc(e.budget.description))</td><td class=\"n\">\(f(e.epsilonCap ?? 0))</td><td class=\"n\">\(String(format: "%.0e", e.deltaCap ?? 0))</td><td>\(esc(e.actor ?? ""))</td><td>\(esc(e.reason ?? ""))</td></tr>\n"
        }
        h += "</table>\n<h2>7. Accountant</h2>\n<p>\(esc(accountant)). Every charge stores its mechanism with every parameter and its RDP increment rounded up; verification recomputes each one. Per-run PLD figures (tighter, for one run with fixed parameters) are reported by <code>conclave run status</code> and never used to enforce across runs.</p>\n"
        h += "<h2>8. Verification</h2>\n<table><tr><th>Check</th><th>Result</th><th>Detail</th></tr>\n" + checks.map {
            "<tr><td>\(esc($0.name))</td><td class=\"\($0.passed ? "ok" : "fail")\">\($0.passed ? "passed" : "FAILED")</td><td>\(esc($0.detail))</td></tr>\n"
        }.joined() + "</table>\n"
        h += "<h2>9. How to re-verify offline</h2>\n<pre>conclave budget export --out ledger.json\nconclave budget verify --ledger ledger.json\nconclave-client budget verify --config silo.toml --against ledger.json   # on each silo</pre>\n"
        h += "<p>Compare the public keys in the export with the fingerprints each party publishes:</p>\n<table><tr><th>Signer</th><th>Ed25519 key fingerprint (SHA-256, first 8 bytes)</th></tr>\n"
            + export.keys.sorted { $0.key < $1.key }.map { "<tr><td>\(esc($0.key))</td><td><code>\(BudgetCommand.Verify.fingerprint($0.value))</code></td></tr>\n" }.joined()
            + "</table>\n</body></html>\n"
        return h
    }

    /// Cumulative ε per budget against time, with each cap dashed.
    static func plot(_ entries: [LedgerEntry], _ budgets: [BudgetSummary]) -> String {
        let width = 1000.0, height = 360.0, left = 60.0, right = 220.0, top = 20.0, bottom = 40.0
        let series = budgets.map { b in (b, entries.filter { $0.budget == b.budget && $0.kind == .charge }.map { ($0.time, $0.epsilonCumulative ?? 0) }) }
        let times = entries.map(\.time)
        guard let t0 = times.min(), let t1 = times.max(), !budgets.isEmpty else { return "<p>No budgets in scope.</p>" }
        let span = max(t1 - t0, 1)
        let top_ε = max(budgets.map(\.epsilonCap).max() ?? 1, series.flatMap { $0.1.map(\.1) }.max() ?? 0) * 1.1
        let x = { (t: Double) in left + (t - t0) / span * (width - left - right) }
        let y = { (e: Double) in top + (1 - e / top_ε) * (height - top - bottom) }
        let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"cumulative epsilon per budget\">\n"
        svg += "<line x1=\"\(left)\" y1=\"\(y(0))\" x2=\"\(width - right)\" y2=\"\(y(0))\" stroke=\"#444\"/><line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(y(0))\" stroke=\"#444\"/>\n"
        for i in 0...4 {
            let e = top_ε * Double(i) / 4
            svg += "<text x=\"\(left - 6)\" y=\"\(y(e) + 4)\" font-size=\"11\" text-anchor=\"end\">\(f(e))</text><line x1=\"\(left)\" y1=\"\(y(e))\" x2=\"\(width - right)\" y2=\"\(y(e))\" stroke=\"#eee\"/>\n"
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 10)\" font-size=\"11\">\(esc(iso(Date(timeIntervalSince1970: t0))))</text><text x=\"\(width - right)\" y=\"\(height - 10)\" font-size=\"11\" text-anchor=\"end\">\(esc(iso(Date(timeIntervalSince1970: t1))))</text>\n"
        svg += "<text x=\"14\" y=\"\(top + 10)\" font-size=\"12\">ε</text>\n"
        for (i, (b, points)) in series.enumerated() {
            let c = colours[i % colours.count]
            svg += "<line x1=\"\(left)\" y1=\"\(y(b.epsilonCap))\" x2=\"\(width - right)\" y2=\"\(y(b.epsilonCap))\" stroke=\"\(c)\" stroke-dasharray=\"6 4\" opacity=\"0.7\"/>\n"
            // A step function: ε jumps at each release and stays until the next.
            var steps = [(t0, 0.0)]
            for (t, e) in points { steps.append((t, steps.last!.1)); steps.append((t, e)) }
            steps.append((t1, steps.last!.1))
            let path = steps.map { "\(String(format: "%.1f", x($0.0))),\(String(format: "%.1f", y($0.1)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            svg += "<rect x=\"\(width - right + 12)\" y=\"\(top + Double(i) * 18)\" width=\"12\" height=\"3\" fill=\"\(c)\"/><text x=\"\(width - right + 30)\" y=\"\(top + Double(i) * 18 + 5)\" font-size=\"11\">\(esc(b.budget.description))</text>\n"
        }
        return svg + "</svg>\n<p class=\"muted\">Solid: cumulative ε spent (accounting value) after each release. Dashed: the budget's cap.</p>"
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func f(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "∞" }

    static func iso(_ d: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        return formatter.string(from: d)
    }
}
