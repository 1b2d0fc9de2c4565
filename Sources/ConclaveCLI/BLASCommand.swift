import ArgumentParser
import ConclaveTensor
import Foundation

/// `conclave blas`: which OpenBLAS kernels this machine runs Conclave on (the same choice every Conclave
/// process makes at start), and `--coretype` for scripts that start other processes (the test runner).
struct BLASCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas", abstract: "The OpenBLAS kernels Conclave selects on this machine.")
    @Flag(help: "Print only the OPENBLAS_CORETYPE other processes should load with (nothing when OpenBLAS's own choice is right).")
    var coretype = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        // `main` already ran the selection (and re-executed if needed): this process runs the chosen kernels.
        if coretype {
            if let core = BLASKernel.coreTypeInUse { print(core) }
            return
        }
        let flags = BLASKernel.cpuFlags()
        let interesting = ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512_bf16"].filter(flags.contains)
        let reexecuted = ProcessInfo.processInfo.environment["CONCLAVE_BLAS_REEXEC"]
        if json {
            printJSON(["core": BLASKernel.currentCore, "best": BLASKernel.best(flags: flags) ?? NSNull(), "cpu_flags": interesting,
                       "openblas_coretype": BLASKernel.coreTypeInUse ?? NSNull(), "openblas_chose": reexecuted ?? BLASKernel.currentCore])
        } else {
            print("in use: \(BLASKernel.currentCore); best for this CPU: \(BLASKernel.best(flags: flags) ?? "none (no AVX)"); CPU: \(interesting.joined(separator: " "))")
            if let reexecuted { print("OpenBLAS alone chose \(reexecuted); Conclave re-executed with OPENBLAS_CORETYPE=\(BLASKernel.coreTypeInUse ?? "?")") }
        }
    }
}
