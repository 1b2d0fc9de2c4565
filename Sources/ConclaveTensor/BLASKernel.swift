import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which OpenBLAS kernels this process runs, and the right ones for the CPU. Distribution builds of OpenBLAS
/// pick a kernel family from the CPUID model number, and fall back to old SSE kernels (Prescott) on CPUs they do
/// not know — common on cloud VMs — whose sgemm is several times slower than the CPU can run. OpenBLAS reads
/// `OPENBLAS_CORETYPE` only when it loads, so a process that finds a worse family than its CPU supports
/// re-executes itself once with the variable set. A variable the user set is never overridden.
public enum BLASKernel {
    /// Kernel families by the instruction sets they need, best first.
    static let targets: [(core: String, rank: Int, flags: Set<String>)] = [
        ("Cooperlake", 5, ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512_bf16"]),
        ("SkylakeX", 4, ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]),
        ("Haswell", 3, ["avx2", "fma"]),
        ("Sandybridge", 2, ["avx"]),
    ]

    /// OpenBLAS 0.3.x x86-64 core names by the widest instruction set their kernels use (0: not known here).
    static func rank(of core: String) -> Int {
        switch core.lowercased() {
        case "sapphirerapids", "cooperlake": 5
        case "skylakex": 4
        case "haswell", "zen", "excavator", "steamroller": 3
        case "sandybridge", "bulldozer", "piledriver": 2
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington", "nehalem",
             "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat": 1
        default: 0
        }
    }

    /// The best kernel family the CPU can run, from its `/proc/cpuinfo` flags; nil without AVX.
    public static func best(flags: Set<String>) -> String? {
        targets.first { $0.flags.isSubset(of: flags) }?.core
    }

    public enum Decision: Equatable, Sendable {
        /// OpenBLAS's choice is right (or the user's): keep it.
        case keep(reason: String)
        /// Re-execute with OPENBLAS_CORETYPE set to this core.
        case reexec(core: String, reason: String)
        /// Keep, but say why it may be slow or not what was asked.
        case warn(String)
    }

    /// What to do, given the core OpenBLAS chose, the CPU's flags, the user's `OPENBLAS_CORETYPE` (if any) and
    /// whether this process is already the re-executed one (`CONCLAVE_BLAS_REEXEC`).
    public static func decide(current: String, flags: Set<String>, userCoreType: String?, reexecuted: Bool) -> Decision {
        let best = best(flags: flags)
        if let asked = userCoreType, !asked.isEmpty, !reexecuted {
            if asked.lowercased() == current.lowercased() {
                return .keep(reason: "OPENBLAS_CORETYPE=\(asked) set by the user")
            }
            return .warn("OPENBLAS_CORETYPE=\(asked) is not a core this OpenBLAS knows or this CPU runs; OpenBLAS chose \(current) (kept: a variable the user set is never overridden)")
        }
        guard let best else {
            return .warn("this CPU has no AVX: OpenBLAS's choice \(current) is kept")
        }
        if reexecuted {
            return rank(of: current) >= rank(of: best)
                ? .keep(reason: "selected by Conclave for this CPU (OpenBLAS alone would not have)")
                : .warn("OpenBLAS ignored OPENBLAS_CORETYPE=\(best) and runs \(current); matrix products will be slower than this CPU allows")
        }
        if rank(of: current) >= rank(of: best) { return .keep(reason: "chosen by OpenBLAS, the best this CPU runs") }
        return .reexec(core: best, reason: "OpenBLAS chose \(current) but this CPU runs \(best) kernels")
    }

    /// The core OpenBLAS runs in this process.
    public static var currentCore: String {
        let env = ProcessInfo.processInfo.environment
        // Test-only: pretend OpenBLAS chose this core (as it does on CPUs it does not know), before re-executing.
        if let pretend = env["CONCLAVE_TEST_BLAS_CORE"], env["CONCLAVE_BLAS_REEXEC"] == nil { return pretend }
        return openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// The CPU's feature flags (`/proc/cpuinfo`, first processor).
    public static func cpuFlags(cpuinfo: String? = nil) -> Set<String> {
        guard let text = cpuinfo ?? (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)), let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Call first thing in `main`: re-executes this process with the right kernels when OpenBLAS chose worse
    /// ones (it does not return then); otherwise returns one line to log first (the core in use and why).
    public static func ensureBestKernels() -> String {
        let env = ProcessInfo.processInfo.environment
        let reexecuted = env["CONCLAVE_BLAS_REEXEC"] != nil
        let decision = decide(current: currentCore, flags: cpuFlags(), userCoreType: env["OPENBLAS_CORETYPE"], reexecuted: reexecuted)
        switch decision {
        case .keep(let reason):
            return "OpenBLAS core \(currentCore): \(reason)"
        case .warn(let message):
            return "OpenBLAS core \(currentCore): \(message)"
        case .reexec(let core, let reason):
            var environment = env
            environment["OPENBLAS_CORETYPE"] = core
            environment["CONCLAVE_BLAS_REEXEC"] = currentCore
            let argv = CommandLine.arguments.map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            execve("/proc/self/exe", argv, envp)
            // Only reached when the re-execution failed: go on with OpenBLAS's kernels, and say so.
            return "OpenBLAS core \(currentCore): \(reason), but re-executing with OPENBLAS_CORETYPE=\(core) failed (errno \(errno)); running on \(currentCore)"
        }
    }

    /// After `ensureBestKernels`: the `OPENBLAS_CORETYPE` other processes (a test runner) should load with —
    /// the one this process runs under, set by the user or by the re-execution — or nil when OpenBLAS's own
    /// choice is the right one.
    public static var coreTypeInUse: String? {
        ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
