import Foundation
import Testing

/// The daemons' layout holds in the binaries: the silo's agent carries no coordinator code (its SQLite is its
/// own privacy ledger, not the coordinator's storage), and the CLI (the operator's admin client) links neither
/// the coordinator nor SQLite.
@Suite struct LinkageTests {
    func symbols(_ executable: String) throws -> String {
        try Cluster.output(of: "/usr/bin/nm", [try Cluster.executable(executable)])
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/nm"), "needs nm (binutils)"))
    func theAgentAndTheCLIDoNotLinkTheCoordinator() throws {
        let coordinator = try symbols("conclave-coordinator")
        #expect(coordinator.contains("RunDriver") && coordinator.contains("sqlite3_open"), "the check must see the symbols where they are")
        for executable in ["conclave-client", "conclave"] {
            let table = try symbols(executable)
            #expect(!table.contains("RunDriver") && !table.contains("CoordinatorStore"), "\(executable) links the coordinator")
        }
        #expect(try symbols("conclave-client").contains("ConclaveSiloLedger"), "the agent keeps its own ledger")
        let cli = try symbols("conclave")
        #expect(!cli.contains("sqlite3_open") && !cli.contains("GRDB"), "the CLI links SQLite")
    }
}
