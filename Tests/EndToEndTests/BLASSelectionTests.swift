import ConclaveTensor
import ConclaveTesting
import Foundation
import Testing

/// Every Conclave process that does dense math selects its OpenBLAS kernels at start: where OpenBLAS alone
/// chose worse than the CPU runs (pretended here with a test hook, as it happens on CPUs it does not know), the
/// process re-executes itself once with OPENBLAS_CORETYPE set, and says so in its first log line.
@Suite struct BLASSelectionTests {
    @Test(.timeLimit(.minutes(2))) func processesReExecuteOntoTheBestKernelsAndSaySo() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-blas"), tls: false)
        defer { cluster.stopAll() }
        guard let best = BLASKernel.best(flags: BLASKernel.cpuFlags()) else { return }  // no AVX: nothing to select
        let pretend = ["CONCLAVE_TEST_BLAS_CORE": "Prescott", "OPENBLAS_CORETYPE": ""]
        let probe = try cluster.run("conclave", ["blas", "--json"], environment: pretend)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(probe.out.utf8)) as? [String: Any], "\(probe.out)\(probe.err)")
        #expect(json["openblas_chose"] as? String == "Prescott" && json["core"] as? String == best, "\(json)")
        #expect(try cluster.run("conclave", ["blas", "--coretype"], environment: pretend).out == best + "\n")

        // An agent: the choice is its first log line; an out-of-range thread count is clamped and said.
        try cluster.writeBlobSilo(0, extra: "[training]\nthreads = 0")
        try cluster.start("silo0", "conclave-client", ["--config", "\(cluster.dir)/silo0.toml"], environment: pretend)
        let log = try cluster.waitFor("the agent's first lines", timeout: 30) { () -> String? in
            let text = cluster.log("silo0")
            return text.contains("thread count adjusted") ? text : nil
        }
        let first = log.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.contains("BLAS kernels") && first.contains("OpenBLAS core \(best): selected by Conclave"), "\(first)")
        #expect(["portable", "avx2", "avx512"].contains { first.contains("dp_noise_kernel=\($0)") }, "\(first)")
        #expect(log.contains("threads = 0 is below 1; using 1"), "\(log)")
    }
}
