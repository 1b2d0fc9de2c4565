import ArgumentParser
import ConclaveConfig
import Foundation

/// Where the coordinator's admin API is: `--coordinator`, else $CONCLAVE_COORDINATOR, else 127.0.0.1:7300.
struct CoordinatorOption: ParsableArguments {
    @Option(name: .long, help: "Coordinator address host:port (default: $CONCLAVE_COORDINATOR or 127.0.0.1:7300).")
    var coordinator: String?

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
