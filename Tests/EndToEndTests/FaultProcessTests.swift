import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// Disk faults against real processes: a database or checkpoint directory that cannot be written at start
/// stops the daemon with the path named; a taken port is named; a full checkpoint disk or a read-only
/// database disk mid-run makes the coordinator keep the round's aggregate and retry, and no silo trains (or spends
/// privacy) again for it. Mount tests need root (tmpfs); elsewhere an unwritable directory stands in.
@Suite(.serialized) struct FaultProcessTests {
    static let isRoot = getuid() == 0

    /// A small tmpfs at `path` (root), or a plain directory.
    static func mountTmpfs(_ path: String, size: String = "4m") throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard isRoot else { return }
        try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
    }

    static func remount(_ path: String, readOnly: Bool) throws {
        if isRoot {
            try run("/bin/mount", ["-o", "remount,\(readOnly ? "ro" : "rw")", path])
        } else {
            chmod(path, readOnly ? 0o555 : 0o755)
        }
    }

    static func unmount(_ path: String) {
        if isRoot { try? run("/bin/umount", ["-l", path]) }
    }

    /// Writes zeros to `path` until its filesystem is full.
    static func fill(_ path: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/dd")
        p.arguments = ["if=/dev/zero", "of=\(path)", "bs=4k"]
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()  // dd stops with "No space left on device"
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestFailure("\(tool) \(arguments.joined(separator: " ")) failed") }
    }

    static let spec = """
        name = "faults"
        rounds = 4
        min_silos = 2
        round_deadline_seconds = 60
        [model]
        architecture = "logreg"
        input_features = 8
        num_classes = 3
        [training]
        learning_rate = 0.1
        [secure_aggregation]
        clip_norm = 2
        phase_timeout_seconds = 10
        [privacy]
        mode = "record"
        noise_multiplier = 1.0
        clip_norm = 1.0
        """

    @Test(.timeLimit(.minutes(2))) func anUnwritableDatabaseOrATakenPortStopsTheDaemonWithTheReason() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-start-faults"))
        defer { cluster.stopAll(); Self.unmount(cluster.dir + "/ro") }
        try Self.mountTmpfs(cluster.dir + "/ro")
        _ = try CoordinatorStore(path: cluster.dir + "/ro/coordinator.sqlite")  // a database from an earlier start
        try Self.remount(cluster.dir + "/ro", readOnly: true)
        try cluster.startCoordinator(database: "ro/coordinator.sqlite")
        let exited = try cluster.waitFor("the coordinator to exit", timeout: 30) { cluster.processes["coordinator"]!.isRunning ? nil : cluster.processes["coordinator"]! }
        #expect(exited.terminationStatus != 0)
        #expect(cluster.log("coordinator").contains("ro/coordinator.sqlite"), "\(cluster.log("coordinator"))")

        // The port is taken by another listener: the error names the address.
        let other = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(other) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(cluster.port).bigEndian
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(other, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(bound == 0 && listen(other, 1) == 0)
        try cluster.startCoordinator()
        let busy = try cluster.waitFor("the coordinator to exit", timeout: 30) { cluster.processes["coordinator"]!.isRunning ? nil : cluster.processes["coordinator"]! }
        #expect(busy.terminationStatus != 0)
        #expect(cluster.log("coordinator").contains("cannot listen on \(cluster.address)"), "\(cluster.log("coordinator").suffix(600))")
    }

    /// Record mode. Round 1's aggregate meets a full checkpoint disk, then (disk freed) a read-only database: the
    /// coordinator keeps the aggregate through both faults and commits it when the database returns. No silo
    /// trains round 1 again or spends privacy on it twice; at the end each silo's own ledger charged exactly the
    /// committed rounds it took part in.
    @Test(.timeLimit(.minutes(4))) func faultsAtCommitKeepTheAggregateAndSpendNoPrivacy() throws {
        try #require(Self.isRoot, "needs root to mount a small tmpfs (a full disk cannot be made otherwise)")
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-commit-faults"))
        let ckpt = cluster.dir + "/ckpt", dbdir = cluster.dir + "/db"
        defer { cluster.stopAll(); Self.unmount(ckpt); Self.unmount(dbdir) }
        try Self.mountTmpfs(ckpt, size: "256k")
        try Self.mountTmpfs(dbdir, size: "8m")
        try cluster.startCoordinator(database: "db/coordinator.sqlite", checkpoints: "ckpt")
        try cluster.write("run.toml", Self.spec)
        _ = try cluster.waitFor("the coordinator to listen", timeout: 30) {
            try? cluster.json(["run", "list", "--json", "--coordinator", cluster.address])
        }
        // The checkpoint disk is full before round 1 closes.
        let filler = ckpt + "/filler"
        Self.fill(filler)
        let started = try cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json", "--coordinator", cluster.address])
        let runID = try #require(started["run_id"] as? String)
        for i in 0..<3 { try cluster.startBlobSilo(i) }
        func status() -> [String: Any]? { try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address]) }
        let faulted = try cluster.waitFor("a storage fault", timeout: 60) {
            (status()?["message"] as? String)?.contains("storage fault") == true ? status() : nil
        }
        #expect(faulted["rounds_completed"] as? Int == 0)
        Thread.sleep(forTimeInterval: 3)  // several backoff steps and many polls: nobody retrains round 1
        try Self.checkLedgers(cluster, atMost: 1)

        // The checkpoint disk is freed but the database's disk fills up: the same aggregate is still kept. (A
        // read-only remount mid-run is refused by the kernel while the database is open for writing, so a full
        // database disk stands in for it; a read-only database at start is tested above.)
        let dbFiller = dbdir + "/filler"
        Self.fill(dbFiller)
        try FileManager.default.removeItem(atPath: filler)
        _ = try cluster.waitFor("the database fault in the log", timeout: 60) {
            cluster.log("coordinator").contains("commit round 1") ? true : nil
        }
        Thread.sleep(forTimeInterval: 2)
        try Self.checkLedgers(cluster, atMost: 1)
        try FileManager.default.removeItem(atPath: dbFiller)

        let done = try cluster.waitFor("the run to complete", timeout: 120) { status()?["status"] as? String == "completed" ? status() : nil }
        #expect(done["rounds_completed"] as? Int == 4)
        let store = try CoordinatorStore(path: dbdir + "/coordinator.sqlite")
        let rounds = try store.rounds(run: runID)
        #expect(rounds.map(\.round) == [1, 2, 3, 4])
        for i in 0..<3 {
            let took = rounds.filter { $0.silos.contains("silo-\(i)") }.count
            let spent = Self.spentRounds(cluster, silo: i)
            #expect(spent == took, "silo-\(i) spent privacy on \(spent) rounds and is in \(took) committed ones")
        }
        // Retries are logged once per backoff step, not per poll.
        let retries = cluster.log("coordinator").components(separatedBy: "round aggregated but not saved").count - 1
        #expect(retries >= 2 && retries < 30, "\(retries) retry lines")
        #expect(try store.attempts(run: runID).filter { $0.round == 1 }.map(\.outcome) == ["committed"])
    }

    static func spentRounds(_ cluster: Cluster, silo i: Int) -> Int {
        cluster.log("silo\(i)").components(separatedBy: "msg=\"privacy spent\"").count - 1
    }

    /// Every silo's own count of rounds it spent privacy on (its log of charges) is at most `atMost`.
    static func checkLedgers(_ cluster: Cluster, atMost: Int) throws {
        for i in 0..<3 {
            #expect(spentRounds(cluster, silo: i) <= atMost, "silo-\(i) spent privacy on \(spentRounds(cluster, silo: i)) rounds")
        }
    }
}

/// A silo's own policy, with real agents: a silo whose `silo.toml` accepts only record-mode runs declines every
/// task of a central-DP run before training, its log names the rule, the coordinator counts the decline by
/// reason, and the other silos' rounds commit without it.
@Suite struct PolicyProcessTests {
    @Test(.timeLimit(.minutes(3))) func aSiloThatRefusesTheRunsPrivacyModeSitsItOut() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-policy"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator()
        for i in 0..<3 { try cluster.startBlobSilo(i) }
        try cluster.startBlobSilo(3, extra: "require_privacy = [\"record\"]")
        try cluster.write("run.toml", CrashSuiteTests.spec.replacingOccurrences(of: "min_silos = 2", with: "min_silos = 2\nsilos_per_round = 4"))
        let started = try cluster.waitFor("the run to start", timeout: 30) {
            try? cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json", "--coordinator", cluster.address])
        }
        let runID = try #require(started["run_id"] as? String)
        let done = try cluster.waitFor("the run to complete", timeout: 120) {
            let s = try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])
            return s?["status"] as? String == "completed" ? s : nil
        }
        #expect(done["rounds_completed"] as? Int == CrashSuiteTests.rounds)
        #expect(cluster.log("silo3").contains("policy.require_privacy"))
        #expect(!cluster.log("silo3").contains("msg=training"), "a declined task is refused before training")
        #expect(cluster.log("coordinator").contains("reason=privacy-mode"))
        let rounds = try CoordinatorStore(path: cluster.dir + "/coordinator.sqlite").rounds(run: runID)
        #expect(rounds.allSatisfy { !$0.silos.contains("silo-3") && $0.silos.count == 3 })
    }
}
