import Foundation
import Testing

/// The daemons' layout holds in the binaries: the silo's agent carries no SQLite and no coordinator code, and
/// the CLI (the operator's admin client) does not link the coordinator either.
@Suite struct LinkageTests {
    func symbols(_ executable: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        p.arguments = [try Cluster.executable(executable)]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/nm"), "needs nm (binutils)"))
    func theAgentAndTheCLIDoNotLinkTheCoordinator() throws {
        let coordinator = try symbols("conclave-coordinator")
        #expect(coordinator.contains("RunDriver") && coordinator.contains("sqlite3_open"), "the check must see the symbols where they are")
        for executable in ["conclave-client", "conclave"] {
            let table = try symbols(executable)
            #expect(!table.contains("RunDriver"), "\(executable) links the coordinator")
            #expect(!table.contains("sqlite3_open") && !table.contains("GRDB"), "\(executable) links SQLite")
        }
    }
}
