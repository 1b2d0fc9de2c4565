import ArgumentParser
import Foundation

/// Starts the demo's child processes (found next to this executable), sends their output to log files, and
/// stops them with SIGTERM — the same signal an operator's service manager would send.
final class ProcessSupervisor: @unchecked Sendable {
    private let logDirectory: String
    private var children: [(name: String, process: Process)] = []
    private let lock = NSLock()

    init(logDirectory: String) { self.logDirectory = logDirectory }

    static func locate(_ executable: String) throws -> String {
        let own = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let sibling = own.appendingPathComponent(executable).path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CLIError("cannot find \(executable) next to conclave or on PATH; build with 'swift build' first")
    }

    func launch(name: String, executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.locate(executable))
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] ?? "1"
        env.merge(environment) { $1 }
        process.environment = env
        let logPath = "\(logDirectory)/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        lock.withLock { children.append((name, process)) }
    }

    /// Throws if a child exited on its own, quoting the end of its log.
    func checkAlive() throws {
        for (name, process) in lock.withLock({ children }) where !process.isRunning {
            let log = (try? String(contentsOfFile: "\(logDirectory)/\(name).log", encoding: .utf8)) ?? ""
            let tail = log.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw CLIError("\(name) exited with status \(process.terminationStatus):\n\(tail)")
        }
    }

    /// Runs a short-lived command to completion (its output in the log directory); throws with its log's tail
    /// when it fails.
    func runToCompletion(name: String, executable: String, arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.locate(executable))
        process.arguments = arguments
        let logPath = "\(logDirectory)/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw CLIError("\(name) failed (status \(process.terminationStatus)): \(text.suffix(400))")
        }
    }

    /// SIGTERM to every child (agents first), then wait up to 10 s each, then SIGKILL.
    func stopAll() {
        let all = lock.withLock { () -> [(name: String, process: Process)] in
            defer { children = [] }
            return children
        }
        for (_, p) in all.reversed() where p.isRunning { p.terminate() }
        for (_, p) in all.reversed() {
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning, Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
    }
}
