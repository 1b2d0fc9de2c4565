import ArgumentParser
import ConclaveConfig
import ConclaveIdentity
import Foundation

/// Where the coordinator's admin API is: `--coordinator`, else $CONCLAVE_COORDINATOR, else 127.0.0.1:7300;
/// and who calls it: `--identity DIR`, else $CONCLAVE_IDENTITY (none: plaintext, for `insecure = true`).
struct CoordinatorOption: ParsableArguments {
    @Option(name: .long, help: "Coordinator address host:port (default: $CONCLAVE_COORDINATOR or 127.0.0.1:7300).")
    var coordinator: String?

    @Option(name: .long, help: "Directory with this user's cert.pem, key.pem and ca.pem (default: $CONCLAVE_IDENTITY; none: plaintext).")
    var identity: String?

    func identityDirectory() throws -> IdentityDirectory? {
        guard let path = identity ?? ProcessInfo.processInfo.environment["CONCLAVE_IDENTITY"], !path.isEmpty else { return nil }
        let dir = IdentityDirectory(path: path)
        try? dir.repair()
        guard dir.exists else {
            throw ValidationError("--identity: \(path) holds no cert.pem; enrol with 'conclave user enroll --bundle FILE --identity \(path)'")
        }
        return dir
    }

    func address() throws -> HostPort {
        let text = coordinator ?? ProcessInfo.processInfo.environment["CONCLAVE_COORDINATOR"] ?? "127.0.0.1:7300"
        do { return try HostPort(parsing: text) } catch { throw ValidationError("--coordinator: \(error.message)") }
    }
}

/// Prints one JSON object on standard output.
func printJSON(_ object: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// NaN and infinity are not JSON: they become null.
func jsonNumber(_ x: Double) -> Any { x.isFinite ? x : NSNull() }

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// A failure at run time (not a usage error): printed as one line, exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
