import ConclaveAdminClient
@testable import ConclaveCoordinator
import ConclaveIdentity
import ConclaveStorage
import ConclaveTesting
import ConclaveWire
import Crypto
import Foundation
import ConclaveConfig
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftASN1
import SwiftProtobuf
import Testing
import X509

/// Identities over real mutual TLS on loopback: every bad certificate, role, token and CSR is refused with a
/// message naming the problem and changes nothing; revocation ends a silo's live connection mid-run; agents
/// renew their certificates with no operator step, and the coordinator renews its own.
@Suite(.serialized) struct IdentityTests {
    /// `conclave ARGS` as the identity in `dir` ("" for none).
    func cli(_ cluster: Cluster, _ args: [String], as dir: String) throws -> (status: Int32, out: String, err: String) {
        try cluster.cli(args + ["--coordinator", cluster.address], environment: ["CONCLAVE_IDENTITY": dir])
    }

    func identities(_ cluster: Cluster) throws -> [String: String] {
        let store = try CoordinatorStore(path: cluster.dir + "/coordinator.sqlite")
        var states = [String: String]()
        for r in try store.identities(role: nil) { states["\(r.role)/\(r.name)"] = r.state }
        return states
    }

    /// An operator certificate from the test federation's own CA, but valid only in [now+from, now+to].
    func operatorIdentity(_ cluster: Cluster, name: String, from: TimeInterval, lifetime: TimeInterval) throws -> String {
        let ca = try FederationCA(certificatePEM: String(contentsOfFile: cluster.dir + "/pki/ca.pem", encoding: .utf8),
                                  keyPEM: String(contentsOfFile: cluster.dir + "/pki/ca.key", encoding: .utf8))
        let key = P256.Signing.PrivateKey()
        let certificate = try ca.issue(publicKey: Certificate.PublicKey(key.publicKey),
                                       for: PeerIdentity(federation: ca.federation, role: .operator, name: name),
                                       lifetime: lifetime, now: Date().addingTimeInterval(from))
        let dir = IdentityDirectory(path: cluster.dir + "/" + name)
        try dir.store(certificate: certificate, key: key, caPEM: try ca.certificate.serializeAsPEM().pemString)
        return dir.path
    }

    @Test(.timeLimit(.minutes(3))) func badCertificatesRolesTokensAndCSRsAreRefusedAndChangeNothing() async throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-identity"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator()
        try cluster.writeBlobSilo(0)  // enrolled through silo add + conclave-client enroll
        let admin = cluster.operatorIdentity
        #expect(try cli(cluster, ["run", "list", "--json"], as: admin).status == 0)
        let before = try identities(cluster)
        #expect(before == ["silo/silo-0": "active", "operator/admin": "active"])
        // Private keys are created 0600: the CA's, the coordinator's, the operator's and the enrolled silo's.
        for key in ["pki/ca.key", "pki/coordinator.key", "pki/operators/admin/key.pem", "silo-0.tls/key.pem"] {
            let mode = try FileManager.default.attributesOfItem(atPath: cluster.dir + "/" + key)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(key) has mode \(String(mode ?? 0, radix: 8))")
        }
        // The bundle holds no key: the address, the CA certificate and a one-time token.
        let bundleText = try String(contentsOfFile: cluster.dir + "/silo-0.enrol.json", encoding: .utf8)
        #expect(!bundleText.contains("PRIVATE KEY") && bundleText.contains("BEGIN CERTIFICATE") && bundleText.contains("\"token\""))

        // No certificate at all.
        let none = try cli(cluster, ["run", "list"], as: "")
        #expect(none.status != 0 && none.err.contains("--identity"), "\(none.err)")
        // A certificate from another CA, even one for the same federation name and role.
        let other = try cluster.cli(["ca", "init", "--federation", "test", "--dir", cluster.dir + "/other"])
        #expect(other.status == 0)
        let foreign = try cli(cluster, ["run", "list"], as: cluster.dir + "/other/operators/admin")
        #expect(foreign.status != 0 && foreign.err.contains("cannot reach"), "\(foreign.err)")
        // Expired, and not yet valid.
        for (name, from, lifetime) in [("expired", -40.0 * 86_400, 86_400.0), ("future", 10.0 * 86_400, 86_400.0)] {
            let r = try cli(cluster, ["run", "list"], as: try operatorIdentity(cluster, name: name, from: from, lifetime: lifetime))
            #expect(r.status != 0, "\(name) certificate was accepted")
        }
        // A silo's certificate calling Admin; a privacy officer starting a run.
        let silo = try cli(cluster, ["run", "list"], as: cluster.dir + "/silo-0.tls")
        #expect(silo.status != 0 && silo.err.contains("needs the role operator or privacy-officer; silo-0 has the role silo"), "\(silo.err)")
        #expect(try cli(cluster, ["user", "add", "po", "--role", "privacy-officer", "--out", cluster.dir + "/po.json"], as: admin).status == 0)
        let poEnrol = try cluster.cli(["user", "enroll", "--bundle", cluster.dir + "/po.json", "--identity", cluster.dir + "/po"])
        #expect(poEnrol.status == 0, "\(poEnrol.err)")
        #expect(try cli(cluster, ["run", "list"], as: cluster.dir + "/po").status == 0, "privacy officers read runs")
        // The officer's ledger signing key: made beside the certificate (0600), bound at enrolment, listed.
        let poKeyMode = try FileManager.default.attributesOfItem(atPath: cluster.dir + "/po/signing.key")[.posixPermissions] as? Int
        #expect(poKeyMode == 0o600)
        let people = try cluster.json(["user", "list", "--json", "--coordinator", cluster.address])
        let po = (people["identities"] as? [[String: Any]])?.first { $0["name"] as? String == "po" }
        #expect((po?["signing_key"] as? String)?.count == 16, "\(String(describing: po))")
        // A privacy officer cannot enrol without proving such a key.
        #expect(try cli(cluster, ["user", "add", "po2", "--role", "privacy-officer", "--out", cluster.dir + "/po2.json"], as: admin).status == 0)
        let po2 = try EnrolmentBundle.read(path: cluster.dir + "/po2.json")
        do {
            _ = try await AdminClient.enroll(po2, .with { $0.token = po2.token; $0.csrDer = Data(try FederationCA.makeCSR(name: "po2", key: P256.Signing.PrivateKey())) })
            Issue.record("a privacy officer enrolled without a signing key")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument && error.message.contains("ledger signing key"), "\(error)")
        }
        try cluster.write("run.toml", CrashSuiteTests.spec)
        let poStart = try cli(cluster, ["run", "start", "--spec", cluster.dir + "/run.toml"], as: cluster.dir + "/po")
        #expect(poStart.status != 0 && poStart.err.contains("needs the role operator; po has the role privacy-officer"), "\(poStart.err)")
        // Revoked: refused from the next call on.
        let revoked = try cli(cluster, ["user", "revoke", "po", "--role", "privacy-officer"], as: admin)
        #expect(revoked.status == 0 && revoked.out.contains("1 certificate(s)"), "\(revoked.out)\(revoked.err)")
        #expect(try cli(cluster, ["run", "list"], as: cluster.dir + "/po").status != 0, "a revoked certificate was accepted")

        // Tokens: unknown, reused, expired.
        try cluster.write("silo9.toml", "[silo]\nid = \"silo-9\"\ncoordinator = \"\(cluster.address)\"\n[data]\nformat = \"csv\"\npath = \"silo0.csv\"\nlabel_column = \"label\"\n")
        #expect(try cli(cluster, ["silo", "add", "silo-9", "--out", cluster.dir + "/b9.json"], as: admin).status == 0)
        var bundle = try EnrolmentBundle.read(path: cluster.dir + "/b9.json")
        let token = bundle.token
        bundle.token = String(token.reversed())
        try cluster.write("b9-forged.json", String(decoding: try bundle.encoded(), as: UTF8.self))
        let unknown = try cluster.run("conclave-client", ["enroll", "--config", cluster.dir + "/silo9.toml", "--bundle", cluster.dir + "/b9-forged.json"])
        #expect(unknown.status != 0 && unknown.err.contains("unknown, already used or expired"), "\(unknown.err)")

        // CSRs: wrong key type, broken signature, another identity, a silo without its Ed25519 proof — each
        // refused with INVALID_ARGUMENT, leaving the token usable.
        bundle.token = token
        let p256 = P256.Signing.PrivateKey()
        let good = try FederationCA.makeCSR(name: "silo-9", key: p256)
        let p384 = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("silo-9") },
                                                 privateKey: Certificate.PrivateKey(P384.Signing.PrivateKey()), attributes: .init(),
                                                 signatureAlgorithm: .ecdsaWithSHA384)
        var serializer = DER.Serializer()
        try serializer.serialize(p384)
        var broken = good
        broken[broken.count - 3] ^= 0x55
        let cases: [(String, [UInt8], Bool, String)] = [
            ("P-384", serializer.serializedBytes, true, "not P-256"),
            ("bad signature", broken, true, "signature"),
            ("another identity", try FederationCA.makeCSR(name: "silo-0", key: p256), true, "asks for \"silo-0\""),
            ("no Ed25519 proof", good, false, "Ed25519"),
        ]
        for (what, csr, prove, expected) in cases {
            var request = Conclave_V1_EnrollRequest.with { $0.token = token; $0.csrDer = Data(csr) }
            if prove {
                let key = Curve25519.Signing.PrivateKey()
                request.identityKey = key.publicKey.rawRepresentation
                request.identitySignature = try key.signature(for: EnrolmentBundle.proofStatement(csrDER: csr))
            }
            do {
                _ = try await AdminClient.enroll(bundle, request)
                Issue.record("a CSR with \(what) was accepted")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument, "\(what): \(error)")
                #expect(error.message.contains(expected), "\(what): \(error.message)")
            }
        }
        #expect(try identities(cluster)["silo/silo-9"] == "pending", "refused enrolments change nothing")
        let enrolled = try cluster.run("conclave-client", ["enroll", "--config", cluster.dir + "/silo9.toml", "--bundle", cluster.dir + "/b9.json"])
        #expect(enrolled.status == 0, "the token survived the refused attempts: \(enrolled.err)")
        let reused = try cluster.run("conclave-client", ["enroll", "--config", cluster.dir + "/silo9.toml", "--bundle", cluster.dir + "/b9.json"])
        #expect(reused.status != 0 && reused.err.contains("unknown, already used or expired"), "\(reused.err)")
        #expect(try cli(cluster, ["silo", "add", "silo-8", "--token-hours", "0.0003", "--out", cluster.dir + "/b8.json"], as: admin).status == 0)
        try cluster.write("silo8.toml", "[silo]\nid = \"silo-8\"\ncoordinator = \"\(cluster.address)\"\n[data]\nformat = \"csv\"\npath = \"silo0.csv\"\nlabel_column = \"label\"\n")
        try await Task.sleep(for: .seconds(1.5))
        let expired = try cluster.run("conclave-client", ["enroll", "--config", cluster.dir + "/silo8.toml", "--bundle", cluster.dir + "/b8.json"])
        #expect(expired.status != 0 && expired.err.contains("unknown, already used or expired"), "\(expired.err)")

        // A silo speaking for another; an operator's certificate used by an agent; a silo whose Ed25519 key
        // is not the enrolled one. Each agent is refused; nothing about the silos changes.
        try cluster.write("impostor.toml", """
            [silo]
            id = "silo-9"
            coordinator = "\(cluster.address)"
            tls_identity = "silo-0.tls"
            [data]
            format = "csv"
            path = "silo0.csv"
            label_column = "label"
            """)
        try cluster.write("operator-agent.toml", """
            [silo]
            id = "silo-0"
            coordinator = "\(cluster.address)"
            tls_identity = "pki/operators/admin"
            identity_key = "silo-0.identity.key"
            [data]
            format = "csv"
            path = "silo0.csv"
            label_column = "label"
            """)
        try cluster.write("rekeyed.toml", """
            [silo]
            id = "silo-0"
            coordinator = "\(cluster.address)"
            identity_key = "another.identity.key"
            [data]
            format = "csv"
            path = "silo0.csv"
            label_column = "label"
            """)
        for name in ["impostor", "operator-agent", "rekeyed"] {
            try cluster.start(name, "conclave-client", ["--config", "\(cluster.dir)/\(name).toml"])
        }
        _ = try cluster.waitFor("the three agents to be refused", timeout: 30) { () -> Bool? in
            let logs = ["impostor", "operator-agent", "rekeyed"].map { cluster.log($0) }
            return logs.allSatisfy { $0.contains("coordinator refused this silo") } ? true : nil
        }
        #expect(cluster.log("impostor").contains("certificate is silo 'silo-0'; it cannot speak for silo 'silo-9'"), "\(cluster.log("impostor"))")
        #expect(cluster.log("operator-agent").contains("needs the role silo; admin has the role operator"), "\(cluster.log("operator-agent"))")
        #expect(cluster.log("rekeyed").contains("but it enrolled with"), "\(cluster.log("rekeyed"))")
        let after = try identities(cluster)
        #expect(after == ["silo/silo-0": "active", "silo/silo-9": "active", "silo/silo-8": "pending",
                          "privacy-officer/po": "revoked", "privacy-officer/po2": "pending", "operator/admin": "active"], "\(after)")
        // The first operator (issued by `ca init`, not enrolled) is listed and revocable like anyone.
        let users = try cli(cluster, ["user", "list"], as: admin)
        #expect(users.out.contains("admin") && users.out.contains("operator"), "\(users.out)")
        #expect(try cli(cluster, ["user", "add", "ops2", "--role", "operator", "--out", cluster.dir + "/ops2.json"], as: admin).status == 0)
        #expect(try cluster.cli(["user", "enroll", "--bundle", cluster.dir + "/ops2.json", "--identity", cluster.dir + "/ops2"]).status == 0)
        let revokeAdmin = try cli(cluster, ["user", "revoke", "admin"], as: cluster.dir + "/ops2")
        #expect(revokeAdmin.status == 0 && revokeAdmin.out.contains("1 certificate(s)"), "\(revokeAdmin.out)\(revokeAdmin.err)")
        #expect(try cli(cluster, ["run", "list"], as: admin).status != 0, "the revoked first operator was accepted")
        #expect(try CoordinatorStore(path: cluster.dir + "/coordinator.sqlite").runs().isEmpty, "no run was started")
    }

    /// Revocation mid-run: the silo's live connection is closed at once, the run goes on without it, and it
    /// cannot come back.
    @Test(.timeLimit(.minutes(3))) func revocationEndsALiveSiloAndTheRunGoesOnWithoutIt() async throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-revoke"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator()
        for i in 0..<3 { try cluster.startBlobSilo(i) }
        try cluster.write("run.toml", CrashSuiteTests.spec.replacingOccurrences(of: "rounds = \(CrashSuiteTests.rounds)", with: "rounds = 60"))
        let started = try cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json", "--coordinator", cluster.address])
        let runID = try #require(started["run_id"] as? String)
        _ = try cluster.waitFor("round 2", timeout: 60) { () -> Bool? in
            let s = try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])
            return ((s?["rounds_completed"] as? Int) ?? 0) >= 2 ? true : nil
        }
        let logBefore = cluster.log("silo2").count
        let revoke = try cluster.cli(["silo", "revoke", "silo-2", "--coordinator", cluster.address])
        let revokedAt = Date()
        #expect(revoke.status == 0 && revoke.out.contains("revoked"), "\(revoke.err)")
        #expect(!revoke.out.contains(" 0 live connection(s)"), "the silo's connection was open: \(revoke.out)")
        // The silo learns within a second: its stream or poll fails.
        _ = try cluster.waitFor("silo-2's connection to end", timeout: 1) { () -> Bool? in
            String(cluster.log("silo2").dropFirst(logBefore)).contains("level=warning") || String(cluster.log("silo2").dropFirst(logBefore)).contains("level=error") ? true : nil
        }
        #expect(Date().timeIntervalSince(revokedAt) < 1.5)
        let status = try cluster.waitFor("the run to complete without silo-2", timeout: 120) { () -> [String: Any]? in
            let s = try? cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])
            return s?["status"] as? String == "completed" ? s : nil
        }
        #expect(status["rounds_completed"] as? Int == 60)
        let rounds = try CoordinatorStore(path: cluster.dir + "/coordinator.sqlite").rounds(run: runID)
        #expect(rounds.map(\.round) == Array(1...60))
        #expect(rounds.suffix(10).allSatisfy { $0.silos == ["silo-0", "silo-1"] }, "silo-2 came back: \(rounds.suffix(3).map(\.silos))")
        #expect(cluster.log("coordinator").contains("identity revoked"))
        // `silo list`: each silo's state, certificate serial, expiry and last contact.
        let list = try cluster.json(["silo", "list", "--json", "--coordinator", cluster.address])
        let rows = try #require(list["identities"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as? String ?? "", $0) })
        #expect(byName["silo-2"]?["state"] as? String == "revoked")
        for name in ["silo-0", "silo-1"] {
            let row = try #require(byName[name])
            #expect(row["state"] as? String == "active")
            #expect((row["serial"] as? String)?.count == 40)
            #expect(((row["not_after"] as? Double) ?? 0) > Date().timeIntervalSince1970 + 86_400)
            #expect(((row["last_contact"] as? Double) ?? 0) > revokedAt.timeIntervalSince1970 - 60)
        }
    }

    /// Agents renew before two-thirds of their certificate's lifetime (here 6 s) with a fresh key, and keep
    /// training past the first certificate's expiry.
    @Test(.timeLimit(.minutes(3))) func agentsRenewTheirCertificatesAndKeepTraining() async throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-rotate"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator(tlsExtra: "certificate_days = 0.00007")  // about 6 s
        for i in 0..<3 { try cluster.writeBlobSilo(i) }
        let first = try IdentityDirectory(path: cluster.dir + "/silo-0.tls").certificate()
        for i in 0..<3 { try cluster.start("silo\(i)", "conclave-client", ["--config", "\(cluster.dir)/silo\(i).toml"]) }
        try cluster.write("run.toml", CrashSuiteTests.spec.replacingOccurrences(of: "rounds = \(CrashSuiteTests.rounds)", with: "rounds = 100000"))
        let started = try cluster.json(["run", "start", "--spec", "\(cluster.dir)/run.toml", "--json", "--coordinator", cluster.address])
        let runID = try #require(started["run_id"] as? String)
        // Past the first certificate's expiry, rounds still complete.
        while Date() < first.notValidAfter.addingTimeInterval(1) { try await Task.sleep(for: .milliseconds(200)) }
        func completed() throws -> Int {
            (try cluster.json(["run", "status", runID, "--json", "--coordinator", cluster.address])["rounds_completed"] as? Int) ?? 0
        }
        let then = try completed()
        _ = try cluster.waitFor("rounds after the first certificates expired", timeout: 30) { try completed() > then + 2 ? true : nil }
        let renewed = try IdentityDirectory(path: cluster.dir + "/silo-0.tls").certificate()
        #expect(renewed.serialNumber != first.serialNumber && renewed.publicKey != first.publicKey)
        for i in 0..<3 { #expect(cluster.log("silo\(i)").contains("certificate renewed"), "silo\(i)") }
    }

    /// TLS 1.3 only, on both listeners: a client that offers at most TLS 1.2 (openssl s_client) completes a
    /// handshake but the connection is closed before any request is read; TLS 1.3 stays open.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs the openssl command"))
    func onlyTLS13IsServed() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-tls13"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator()
        _ = try cluster.waitFor("the coordinator", timeout: 30) { try? cluster.cli(["run", "list", "--coordinator", cluster.address]).status == 0 ? true : nil }
        func probe(_ port: Int, _ version: String) throws -> String {
            let admin = cluster.operatorIdentity
            return try Cluster.output(of: "/bin/sh", ["-c", "(printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'; sleep 1) | timeout 10 openssl s_client -connect 127.0.0.1:\(port) \(version) -alpn h2 -cert \(admin)/cert.pem -key \(admin)/key.pem -CAfile \(cluster.dir)/pki/ca.pem 2>&1"])
        }
        let old = try probe(cluster.port, "-tls1_2")
        #expect(old.contains("TLSv1.2") && old.contains("closed"), "\(old.suffix(600))")
        let enrolOld = try probe(cluster.enrolPort, "-tls1_2")
        #expect(enrolOld.contains("TLSv1.2") && enrolOld.contains("closed"), "\(enrolOld.suffix(600))")
        let current = try probe(cluster.port, "")
        #expect(current.contains("TLSv1.3") && !current.contains("closed"), "\(current.suffix(600))")
    }

    /// TLS checks a certificate's validity only at the handshake: a connection whose certificate expires while
    /// it is open is closed by the coordinator's sweep (and every RPC on it is refused before that).
    @Test(.timeLimit(.minutes(2))) func connectionsOutlivingTheirCertificateAreClosed() async throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-expiry"))
        defer { cluster.stopAll() }
        try cluster.startCoordinator()
        _ = try cluster.waitFor("the coordinator", timeout: 30) { try? cluster.cli(["run", "list", "--coordinator", cluster.address]).status == 0 ? true : nil }
        let shortLived = IdentityDirectory(path: try operatorIdentity(cluster, name: "brief", from: 0, lifetime: 3))
        let address = try HostPort(parsing: cluster.address)
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port),
                                                       transportSecurity: ClientTLS.mutual(shortLived))
        try await withGRPCClient(transport: transport) { client in
            let admin = Conclave_V1_Admin.Client(wrapping: client)
            _ = try await admin.listRuns(.init())  // the connection is up and accepted
            _ = try cluster.waitFor("the sweep to close the expired connection", timeout: 30) {
                cluster.log("coordinator").contains("connections with expired certificates closed") ? true : nil
            }
            await #expect(throws: RPCError.self) { _ = try await admin.listRuns(.init()) }
        }
    }

    /// A certificate replacement cut short at any step leaves a matching pair once repaired: the old one when
    /// the new key never reached the disk, the new one otherwise.
    @Test func aReplacementInterruptedAtAnyStepLeavesAMatchingPair() throws {
        let dir = Fixtures.temporaryDirectory("conclave-pair")
        let ca = try FederationCA.create(federation: "t")
        func pair() throws -> (String, String, Certificate) {
            let key = P256.Signing.PrivateKey()
            let c = try ca.issue(publicKey: Certificate.PublicKey(key.publicKey), for: PeerIdentity(federation: "t", role: .silo, name: "s"), lifetime: 3600)
            return (try c.serializeAsPEM().pemString, key.pemRepresentation, c)
        }
        let identity = IdentityDirectory(path: dir)
        func matches() throws -> Bool {
            let key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: identity.keyPath, encoding: .utf8))
            return try identity.certificate().publicKey == Certificate.PublicKey(key.publicKey)
        }
        let (oldCert, oldKey, old) = try pair()
        try KeyPairFiles.replace(certificatePath: identity.certificatePath, certificatePEM: oldCert, keyPath: identity.keyPath, keyPEM: oldKey)
        let (newCert, newKey, new) = try pair()
        // (1) only the new certificate written; (2) both written, nothing moved; (3) the certificate moved.
        for step in 1...3 {
            try KeyPairFiles.replace(certificatePath: identity.certificatePath, certificatePEM: oldCert, keyPath: identity.keyPath, keyPEM: oldKey)
            try newCert.write(toFile: identity.certificatePath + ".next", atomically: true, encoding: .utf8)
            if step >= 2 { try newKey.write(toFile: identity.keyPath + ".next", atomically: true, encoding: .utf8) }
            if step == 3 { rename(identity.certificatePath + ".next", identity.certificatePath) }
            try identity.repair()
            #expect(try matches(), "step \(step)")
            #expect(try identity.certificate() == (step == 1 ? old : new), "step \(step)")
            #expect(!FileManager.default.fileExists(atPath: identity.certificatePath + ".next")
                    && !FileManager.default.fileExists(atPath: identity.keyPath + ".next"))
        }
    }

    /// The coordinator renews its own server certificate after two-thirds of its lifetime: fresh key, same
    /// identity and hosts, files replaced, served from the next handshake.
    @Test func theCoordinatorRenewsItsOwnCertificate() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-server-cert"))
        let pki = try CoordinatorPKI(directory: cluster.dir + "/pki", revokedSerials: [], revokedIdentities: [])
        let first = pki.server.current
        #expect(try pki.renewServerIfDue(lifetime: 30 * 86_400, now: Date()) == nil, "not due yet")
        let serial = try #require(try pki.renewServerIfDue(lifetime: 30 * 86_400, now: Date().addingTimeInterval(21 * 86_400)))
        let renewed = pki.server.current
        #expect(renewed.serialHex == serial && renewed.publicKey != first.publicKey)
        #expect(PeerIdentity(certificate: renewed) == PeerIdentity(certificate: first))
        #expect(try renewed.extensions.subjectAlternativeNames == first.extensions.subjectAlternativeNames)
        let onDisk = try Certificate(pemEncoded: String(contentsOfFile: cluster.dir + "/pki/coordinator.pem", encoding: .utf8))
        #expect(onDisk == renewed)
        let reloaded = try CoordinatorPKI(directory: cluster.dir + "/pki", revokedSerials: [], revokedIdentities: [])
        #expect(reloaded.server.current == renewed, "the new key on disk matches the new certificate")
    }
}
