import ArgumentParser
import ConclaveAdminClient
import ConclaveConfig
import ConclaveCrypto
import ConclaveIdentity
import ConclaveSupport
import ConclaveWire
import Crypto
import Foundation
import GRPCCore
import SwiftASN1
import SwiftProtobuf
import X509

/// `conclave ca init`: the federation's CA, the coordinator's certificate and the first operator's identity.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ca", abstract: "The federation's certificate authority.",
                                                    subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the federation CA (P-256), the coordinator's certificate and the first operator's identity.")
        @Option(help: "Federation name (letters, digits, '-', '_', '.'); part of every identity.") var federation: String
        @Option(help: "Directory to create (the coordinator's [tls] dir).") var dir: String
        @Option(name: .customLong("host"), help: "A DNS name or IPv4 address agents dial (repeatable; default localhost and 127.0.0.1).")
        var hosts: [String] = []
        @Option(help: "Name of the first operator; their identity goes to DIR/operators/NAME.") var `operator` = "admin"
        @Option(help: "Lifetime of the coordinator's and the operator's certificates, in days.") var days = 30.0

        func run() throws {
            guard PeerIdentity.isValidName(`operator`) else { throw ValidationError("--operator must be 1–128 letters, digits, '-', '_' or '.'") }
            guard days > 0, days <= 3650 else { throw ValidationError("--days must be above 0 and at most 3650") }
            let made = try FederationSetup.create(federation: federation, dir: dir, hosts: hosts.isEmpty ? ["localhost", "127.0.0.1"] : hosts,
                                                  operator: `operator`, days: days)
            print("federation '\(federation)' created in \(dir)")
            print("  CA:           \(dir)/ca.pem (key \(dir)/ca.key, mode 0600)")
            print("  coordinator:  \(dir)/coordinator.pem for \(hosts.isEmpty ? "localhost, 127.0.0.1" : hosts.joined(separator: ", "))")
            print("  operator:     \(made.operatorDirectory.path) (\(made.operatorIdentity.uri)); use it with --identity \(made.operatorDirectory.path)")
        }
    }
}

/// `conclave silo add|revoke|list`.
struct SiloCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "silo", abstract: "Enrol, revoke and list silos.",
                                                    subcommands: [Add.self, Revoke.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mint a one-time enrolment bundle for a silo (printed; no keys in it).")
        @Argument(help: "Silo id.") var siloID: String
        @Option(help: "The dataset the silo contributes.") var dataset = ""
        @Option(help: "Also write the bundle to this file.") var out: String?
        @Option(help: "Token lifetime in hours (default: the coordinator's token_hours).") var tokenHours: Double?
        @OptionGroup var target: CoordinatorOption

        func run() async throws {
            try await addIdentity(role: "silo", name: siloID, dataset: dataset, tokenHours: tokenHours, out: out, target: target)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a silo at once: new handshakes fail, live streams close.")
        @Argument(help: "Silo id.") var siloID: String
        @OptionGroup var target: CoordinatorOption
        func run() async throws { try await revokeIdentity(role: "silo", name: siloID, target: target) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each silo's state, certificate serial, expiry and last contact.")
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var target: CoordinatorOption
        func run() async throws { try await listIdentities(roles: ["silo"], json: json, target: target) }
    }
}

/// `conclave user add|revoke|list|enroll`: operators and privacy officers.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Operators and privacy officers.",
                                                    subcommands: [Add.self, Revoke.self, List.self, Enroll.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mint a one-time enrolment bundle for a person.")
        @Argument(help: "User name.") var name: String
        @Option(help: "operator or privacy-officer.") var role: String
        @Option(help: "Also write the bundle to this file.") var out: String?
        @Option(help: "Token lifetime in hours (default: the coordinator's token_hours).") var tokenHours: Double?
        @OptionGroup var target: CoordinatorOption

        func validate() throws {
            guard ["operator", "privacy-officer"].contains(role) else { throw ValidationError("--role must be operator or privacy-officer") }
        }
        func run() async throws {
            try await addIdentity(role: role, name: name, dataset: "", tokenHours: tokenHours, out: out, target: target)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a person's certificates at once.")
        @Argument(help: "User name.") var name: String
        @Option(help: "operator or privacy-officer (default: operator).") var role = "operator"
        @OptionGroup var target: CoordinatorOption
        func run() async throws { try await revokeIdentity(role: role, name: name, target: target) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Operators and privacy officers with their state.")
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var target: CoordinatorOption
        func run() async throws { try await listIdentities(roles: ["operator", "privacy-officer"], json: json, target: target) }
    }

    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enrol with a bundle: makes a key here and stores the certificate in --identity.")
        @Option(help: "The enrolment bundle file.") var bundle: String
        @Option(help: "Directory for cert.pem, key.pem and ca.pem.") var identity: String

        func run() async throws {
            let b = try EnrolmentBundle.read(path: bundle)
            guard b.role != "silo" else { throw CLIError("\(bundle) enrols silo '\(b.name)': run 'conclave-client enroll --config silo.toml --bundle \(bundle)' on the silo") }
            // The person's Ed25519 key for signing ledger entries (budget registrations, amendments), kept beside
            // the certificate (0600) and bound to the identity at enrolment.
            let signing = try IdentityKeyFile.loadOrCreate(path: identity + "/signing.key").key
            do {
                let (id, certificate) = try await EnrolmentClient.enroll(bundle: b, into: IdentityDirectory(path: identity),
                                                                         prover: { statement in (signing.publicKey, signing.sign(statement)) })
                print("enrolled as \(id.uri); certificate \(certificate.serialHex) valid until \(certificate.notValidAfter); identity in \(identity) (ledger signing key \(identity)/signing.key)")
            } catch let error as RPCError {
                throw CLIError("enrolment refused: \(error.message)")
            }
        }
    }
}

/// Asks the coordinator for a one-time token and returns the bundle to hand over.
func mintBundle(role: String, name: String, dataset: String, tokenHours: Double?, target: CoordinatorOption) async throws -> EnrolmentBundle {
    let address = try target.address()
    let identity = try target.identityDirectory()
    let reply: Conclave_V1_AddIdentityReply
    do {
        reply = try await AdminClient.withIdentity(address, identity: identity) { client in
            try await client.addIdentity(.with {
                $0.role = role
                $0.name = name
                $0.dataset = dataset
                $0.tokenSeconds = (tokenHours ?? 0) * 3600
            })
        }
    } catch let error as RPCError {
        throw CLIError(describe(error, address: address, identity: identity))
    }
    return EnrolmentBundle(federation: reply.federation, coordinator: "\(address.host):\(address.port)",
                           enrolment: reply.enrolmentAddress, role: role, name: name, token: reply.token,
                           tokenExpiresAt: reply.tokenExpiresAt, caPEM: reply.caPem)
}

func addIdentity(role: String, name: String, dataset: String, tokenHours: Double?, out: String?, target: CoordinatorOption) async throws {
    let bundle = try await mintBundle(role: role, name: name, dataset: dataset, tokenHours: tokenHours, target: target)
    let text = String(decoding: try bundle.encoded(), as: UTF8.self)
    if let out {
        try IdentityDirectory.writePrivate(text, to: out)
        printError("enrolment bundle for \(role) '\(name)' written to \(out) (one use, expires \(Date(timeIntervalSince1970: bundle.tokenExpiresAt)))")
    }
    print(text)
}

func revokeIdentity(role: String, name: String, target: CoordinatorOption) async throws {
    let address = try target.address()
    let identity = try target.identityDirectory()
    do {
        let reply = try await AdminClient.withIdentity(address, identity: identity) { client in
            try await client.revokeIdentity(.with { $0.role = role; $0.name = name })
        }
        print("\(role) '\(name)' revoked: \(reply.certificatesRevoked) certificate(s), \(reply.connectionsClosed) live connection(s) closed")
    } catch let error as RPCError {
        throw CLIError(describe(error, address: address, identity: identity))
    }
}

func listIdentities(roles: [String], json: Bool, target: CoordinatorOption) async throws {
    let address = try target.address()
    let identity = try target.identityDirectory()
    let reply: Conclave_V1_ListIdentitiesReply
    do {
        reply = try await AdminClient.withIdentity(address, identity: identity) { client in try await client.listIdentities(.init()) }
    } catch let error as RPCError {
        throw CLIError(describe(error, address: address, identity: identity))
    }
    let rows = reply.identities.filter { roles.contains($0.role) }
    if json {
        printJSON(["identities": rows.map { r -> [String: Any] in
            ["role": r.role, "name": r.name, "state": r.state, "serial": r.serial, "dataset": r.dataset,
             "signing_key": r.signingKeyFingerprint,
             "not_after": r.notAfter > 0 ? r.notAfter : NSNull(), "last_contact": r.lastContact > 0 ? r.lastContact : NSNull()]
        }])
        return
    }
    func time(_ t: Double) -> String { t > 0 ? ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) : "-" }
    func column(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
    let header: [String] = [column("NAME", 20), column("ROLE", 17), column("STATE", 9), column("SERIAL", 18), column("EXPIRES", 22), "LAST CONTACT"]
    print(header.joined())
    for r in rows {
        let cells: [String] = [column(r.name, 20), column(r.role, 17), column(r.state, 9), column(String(r.serial.prefix(16)), 18),
                               column(time(r.notAfter), 22), time(r.lastContact)]
        print(cells.joined())
    }
}
