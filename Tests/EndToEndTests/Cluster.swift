import ConclaveLearning
import ConclaveTesting
import Foundation
import Testing

/// Real `conclave-coordinator`, `conclave-client` and `conclave` processes for end-to-end tests, each
/// logging to a file in the test's directory. By default over mutual TLS, the way a user sets it up: the CA
/// from `conclave ca init`, every CLI call with the first operator's identity, and every agent enrolled
/// through `conclave silo add` and `conclave-client enroll` before it starts.
final class Cluster: @unchecked Sendable {
    let dir: String
    let port: Int
    let enrolPort: Int
    let tls: Bool
    private(set) var processes: [String: Process] = [:]

    init(dir: String, tls: Bool = true) throws {
        self.dir = dir
        self.port = try Cluster.freePort()
        self.enrolPort = try Cluster.freePort()
        self.tls = tls
        if tls {
            let made = try cli(["ca", "init", "--federation", "test", "--dir", "\(dir)/pki"])
            guard made.status == 0 else { throw TestFailure("conclave ca init failed: \(made.err)") }
        }
    }

    /// The first operator's identity (made by `conclave ca init`).
    var operatorIdentity: String { "\(dir)/pki/operators/admin" }

    var address: String { "127.0.0.1:\(port)" }

    static var binDirectory: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func executable(_ name: String) throws -> String {
        let path = binDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(path) is missing: run `swift build --build-tests` before `swift test` (make test does)")
        }
        return path
    }

    /// Binds port 0 to learn a free port, then releases it for the coordinator.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard bound else { throw TestFailure("cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
    }

    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        if tls, executable == "conclave-client", let i = arguments.firstIndex(of: "--config"), i + 1 < arguments.count {
            try enrolIfNeeded(config: arguments[i + 1])
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Cluster.executable(executable))
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        env.merge(environment) { $1 }
        env = env.filter { !$0.value.isEmpty }  // an empty value unsets a variable
        p.environment = env
        let log = "\(dir)/\(name).log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        processes[name] = p
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: "\(dir)/\(name).log", encoding: .utf8)) ?? ""
    }

    func startCoordinator(environment: [String: String] = [:], database: String = "coordinator.sqlite",
                          checkpoints: String = "checkpoints", tlsExtra: String = "", requireBudgets: Bool = false) throws {
        let security = tls ? "[tls]\ndir = \"pki\"\nenrol_listen = \"127.0.0.1:\(enrolPort)\"\n\(tlsExtra)" : ""
        try write("coordinator.toml", """
            [server]
            listen = "\(address)"
            \(tls ? "" : "insecure = true")
            \(security)
            [storage]
            database = "\(database)"
            checkpoints = "\(checkpoints)"
            [federation]
            liveness_seconds = 10
            [privacy]
            require_budgets = \(requireBudgets)
            """)
        try start("coordinator", "conclave-coordinator", ["--config", "\(dir)/coordinator.toml"], environment: environment)
    }

    /// Sends SIGTERM and waits for the exit status.
    func stop(_ name: String, timeout: Double = 20) throws -> Int32 {
        guard let p = processes[name] else { throw TestFailure("no process \(name)") }
        p.terminate()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            throw TestFailure("\(name) ignored SIGTERM for \(timeout) s")
        }
        processes[name] = nil
        return p.terminationStatus
    }

    func stopAll() {
        for (_, p) in processes where p.isRunning {
            p.terminate()
        }
        for (_, p) in processes {
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning, Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        processes = [:]
    }

    /// Runs `conclave ARGS` to completion (as the first operator when over TLS, unless the environment
    /// says otherwise); returns (status, stdout, stderr).
    func cli(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try run("conclave", arguments, environment: environment)
    }

    func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Cluster.executable(executable))
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        if tls { env["CONCLAVE_IDENTITY"] = operatorIdentity }
        env.merge(environment) { $1 }
        env = env.filter { !$0.value.isEmpty }  // an empty value unsets a variable
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Standard output of a program run to its end (standard error dropped), for tools the tests drive.
    static func output(of path: String, _ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func json(_ arguments: [String]) throws -> [String: Any] {
        let r = try cli(arguments)
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] else {
            throw TestFailure("conclave \(arguments.joined(separator: " ")) failed (\(r.status)): \(r.err)\(r.out)")
        }
        return obj
    }
}

extension Cluster {
    /// Enrols the silo a config names, unless its TLS identity exists: `conclave silo add` (retried until the
    /// coordinator listens), then `conclave-client enroll` with the bundle.
    func enrolIfNeeded(config: String) throws {
        let text = try String(contentsOfFile: config, encoding: .utf8)
        guard !text.contains("insecure = true"),
              let line = text.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("id = ") }) else { return }
        let id = line.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
        let configDir = (config as NSString).deletingLastPathComponent
        guard !FileManager.default.fileExists(atPath: "\(configDir)/\(id).tls/cert.pem") else { return }
        let bundle = "\(dir)/\(id).enrol.json"
        _ = try waitFor("the coordinator to mint a bundle for \(id)", timeout: 30) { () -> Bool? in
            let r = try cli(["silo", "add", id, "--out", bundle, "--coordinator", address])
            return r.status == 0 ? true : nil
        }
        let enrolled = try run("conclave-client", ["enroll", "--config", config, "--bundle", bundle])
        guard enrolled.status == 0 else { throw TestFailure("enrolment of \(id) failed: \(enrolled.err)\(enrolled.out)") }
    }

    /// Starts agent `silo-i` on 90 synthetic points (8 features, 3 classes) in a CSV file. Three-silo test
    /// federations have a Shamir threshold of 2, so these silos accept sums of two (the default asks for 3).
    func startBlobSilo(_ i: Int, extra: String = "") throws {
        try writeBlobSilo(i, extra: extra)
        try start("silo\(i)", "conclave-client", ["--config", "\(dir)/silo\(i).toml"])
    }

    /// Writes agent `silo-i`'s data and config and enrols it (over TLS), without starting it.
    func writeBlobSilo(_ i: Int, extra: String = "") throws {
        let data = Fixtures.blobs(count: 90, seed: UInt64(10 + i))
        var csv = (0..<8).map { "f\($0)" }.joined(separator: ",") + ",label\n"
        for r in 0..<data.count {
            csv += data.features[(r * 8)..<(r * 8 + 8)].map { "\($0)" }.joined(separator: ",") + ",\(data.labels[r])\n"
        }
        try write("silo\(i).csv", csv)
        try write("silo\(i).toml", """
            [silo]
            id = "silo-\(i)"
            coordinator = "\(address)"
            [data]
            format = "csv"
            path = "silo\(i).csv"
            label_column = "label"
            [connection]
            backoff_initial_seconds = 0.1
            backoff_max_seconds = 0.5
            [policy]
            min_silos_in_aggregate = 2
            \(extra)
            """)
        if tls { try enrolIfNeeded(config: "\(dir)/silo\(i).toml") }
    }

    func waitFor<T>(_ what: String, timeout: Double, _ poll: () throws -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try poll() { return value }
            usleep(200_000)
        }
        throw TestFailure("timed out after \(Int(timeout)) s waiting for \(what)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
