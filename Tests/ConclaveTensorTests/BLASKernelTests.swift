import ConclaveTensor
import Foundation
import Testing

/// The choice of OpenBLAS kernels on canned CPUs: a Xeon whose model OpenBLAS 0.3.21 does not know (Prescott
/// chosen) is re-executed on AVX-512 kernels, an AVX2 machine on Haswell's; a right choice, a CPU without AVX and
/// a variable the user set are kept; an unknown or ignored variable is said.
@Suite struct BLASKernelTests {
    static let avx2: Set<String> = ["sse4_2", "avx", "avx2", "fma"]
    static let avx512 = avx2.union(["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"])
    static let bf16 = avx512.union(["avx512_bf16"])

    @Test func theBestKernelsForEachCPU() {
        #expect(BLASKernel.best(flags: Self.bf16) == "Cooperlake")
        #expect(BLASKernel.best(flags: Self.avx512) == "SkylakeX")
        #expect(BLASKernel.best(flags: Self.avx2) == "Haswell")
        #expect(BLASKernel.best(flags: ["sse2", "avx"]) == "Sandybridge")
        #expect(BLASKernel.best(flags: ["sse2", "sse3"]) == nil)
        // Flags as /proc/cpuinfo lists them.
        let cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512dq avx512cd\n\nprocessor\t: 1\n"
        #expect(BLASKernel.best(flags: BLASKernel.cpuFlags(cpuinfo: cpuinfo)) == "SkylakeX")
    }

    @Test func decisions() {
        func decide(_ current: String, _ flags: Set<String>, user: String? = nil, reexecuted: Bool = false) -> BLASKernel.Decision {
            BLASKernel.decide(current: current, flags: flags, userCoreType: user, reexecuted: reexecuted)
        }
        guard case .reexec("SkylakeX", _) = decide("Prescott", Self.avx512) else { Issue.record("Prescott on AVX-512 kept"); return }
        guard case .reexec("Cooperlake", _) = decide("Prescott", Self.bf16) else { Issue.record("Prescott on BF16 kept"); return }
        guard case .reexec("Haswell", _) = decide("Nehalem", Self.avx2) else { Issue.record("Nehalem on AVX2 kept"); return }
        // OpenBLAS's own right (or better-named equivalent) choices stand.
        for (current, flags) in [("Cooperlake", Self.bf16), ("SkylakeX", Self.avx512), ("Zen", Self.avx2), ("Haswell", Self.avx2)] {
            guard case .keep = decide(current, flags) else { Issue.record("\(current) was not kept"); return }
        }
        // No AVX: OpenBLAS's choice is kept, and said.
        guard case .warn(let noAVX) = decide("Prescott", ["sse2", "sse3"]), noAVX.contains("no AVX") else { Issue.record("no-AVX not said"); return }
        // The user's variable is never overridden; one the library did not honour is said.
        guard case .keep = decide("Haswell", Self.avx512, user: "Haswell") else { Issue.record("the user's choice was overridden"); return }
        guard case .warn(let unknown) = decide("Cooperlake", Self.bf16, user: "Bogus"), unknown.contains("OPENBLAS_CORETYPE=Bogus") else {
            Issue.record("an unknown OPENBLAS_CORETYPE was not said"); return
        }
        // After re-executing: kept when honoured, said when ignored (never a second re-execution).
        guard case .keep = decide("SkylakeX", Self.avx512, user: "SkylakeX", reexecuted: true) else { Issue.record("honoured re-exec not kept"); return }
        guard case .warn(let ignored) = decide("Prescott", Self.avx512, user: "SkylakeX", reexecuted: true), ignored.contains("ignored") else {
            Issue.record("an ignored re-execution was not said"); return
        }
    }

    /// The BLAS suite runs on the kernels Conclave selects: the best this CPU runs (make test sets
    /// OPENBLAS_CORETYPE from `conclave blas --coretype` where OpenBLAS alone would choose worse).
    @Test func thisProcessRunsTheSelectedKernels() {
        let env = ProcessInfo.processInfo.environment
        if let asked = env["OPENBLAS_CORETYPE"], !asked.isEmpty {
            #expect(BLASKernel.currentCore.lowercased() == asked.lowercased(), "OpenBLAS ignored OPENBLAS_CORETYPE=\(asked)")
        } else if let best = BLASKernel.best(flags: BLASKernel.cpuFlags()) {
            guard case .keep = BLASKernel.decide(current: BLASKernel.currentCore, flags: BLASKernel.cpuFlags(), userCoreType: nil, reexecuted: false) else {
                Issue.record("OpenBLAS runs \(BLASKernel.currentCore) but this CPU runs \(best): run the tests with make test (it sets OPENBLAS_CORETYPE)")
                return
            }
        }
    }
}
