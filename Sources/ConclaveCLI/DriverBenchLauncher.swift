import ArgumentParser
import Foundation

/// `conclave bench driver`: the coordinator's run driver is timed inside `conclave-coordinator bench-driver`
/// (the CLI does not link the coordinator); this passes the options through and waits for it.
struct DriverBenchLauncher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "driver", abstract: "Time the coordinator's run driver taking masked inputs in a secure round.")
    @Option(help: "Number of silos.") var silos = 10
    @Option(help: "Parameters per update (a logistic regression with this many inputs × 10 classes, rounded).") var params = 10_000_000
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Measure without the durable attempt log (to separate its cost; the coordinator always keeps it).")
    var noDurableAttempts = false

    func run() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessSupervisor.locate("conclave-coordinator"))
        process.arguments = ["bench-driver", "--silos", "\(silos)", "--params", "\(params)"]
            + (json ? ["--json"] : []) + (noDurableAttempts ? ["--no-durable-attempts"] : [])
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ExitCode(process.terminationStatus) }
    }
}

/// `conclave bench tls`: handshake and round cost of mutual TLS against plaintext, timed inside
/// `conclave-coordinator bench-tls` (the real server on loopback).
struct TLSBenchLauncher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls", abstract: "Time TLS handshakes and rounds against plaintext on loopback.")
    @Option(help: "Parameters of the model (101770 is the demo's 784-128-10 MLP; otherwise a logistic regression).")
    var params = 101_770
    @Option(help: "Silos per round.") var silos = 3
    @Option(help: "Rounds timed per transport.") var rounds = 5
    @Option(help: "Connections timed per transport.") var handshakes = 200
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessSupervisor.locate("conclave-coordinator"))
        process.arguments = ["bench-tls", "--params", "\(params)", "--silos", "\(silos)", "--rounds", "\(rounds)",
                             "--handshakes", "\(handshakes)"] + (json ? ["--json"] : [])
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ExitCode(process.terminationStatus) }
    }
}
