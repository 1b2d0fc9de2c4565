// The wire decoders under libFuzzer. Built two ways (no top-level code: libFuzzer brings its own main):
// - normally (`make test` builds it): `conclave-wire-fuzz FILE…` replays inputs (a corpus, or a crash libFuzzer
//   found) through the same checks, so a finding can be reproduced without the sanitizer;
// - for fuzzing (see Benchmarks/README.md, "Fuzzing"):
//   swift build --scratch-path .build-fuzz --product conclave-wire-fuzz -Xswiftc -sanitize=fuzzer \
//     -Xswiftc -parse-as-library -Xswiftc -DLIBFUZZER -Xswiftc -use-ld=lld
//   .build-fuzz/debug/conclave-wire-fuzz -max_total_time=60
// Each input is tried as every message the coordinator or the agent decodes from a peer; nothing may trap.
import ConclaveWireConversions
import ConclaveFederation
import ConclaveLearning
import ConclaveSecAgg
import ConclaveWire
import Foundation
import SwiftProtobuf

enum WireFuzz {
    static func run(_ bytes: [UInt8]) {
        if let d = try? Conclave_V1_SiloDescription(serializedBytes: bytes), let silo = try? SiloInfo(proto: d) {
            precondition(silo.examples <= WireCheck.maxExamples)
        }
        if let h = try? Conclave_V1_UpdateHeader(serializedBytes: bytes) {
            _ = try? SiloInfo(proto: h.silo)
            _ = try? WireCheck.name(h.runID, "run id")
            _ = try? WireCheck.finite(h.trainLoss, "loss", in: 0...1e30)
            if h.hasPrivacy { _ = try? SiloPrivacy(proto: h.privacy) }
            _ = try? WeightsAssembler(total: h.totalValues, expected: 6, what: "update")
        }
        if let c = try? Conclave_V1_UpdateChunk(serializedBytes: bytes), case .weights(let w) = c.kind,
           var assembler = try? WeightsAssembler(total: 6, expected: 6, what: "update") {
            _ = try? assembler.add(w)
        }
        if let m = try? Conclave_V1_SecureClientMessage(serializedBytes: bytes) {
            switch m.kind {
            case .join(let j): _ = try? KeyAdvertisement(checking: j.keys); _ = try? SiloInfo(proto: j.silo)
            case .shares(let s): for p in s.shares { _ = try? EncryptedShare(checking: p) }
            case .unmasking(let u): _ = try? UnmaskingResponse(silo: "s", proto: u)
            case .resume(let r): _ = try? WireCheck.name(r.siloID, "silo id")
            default: break
            }
        }
        if let t = try? Conclave_V1_TrainTask(serializedBytes: bytes), let model = try? ModelSpec(proto: t.model),
           model.parameterCount <= 1 << 20 {
            _ = try? TrainingConfig(proto: t.training)
            if t.hasSecure { _ = try? SecureTask(proto: t.secure, parameterCount: model.parameterCount) }
        }
        if let d = try? Conclave_V1_DeclineTaskRequest(serializedBytes: bytes) {
            _ = try? WireCheck.text(d.detail, "detail")
        }
    }
}

#if LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    WireFuzz.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// SwiftPM links an executable's entry point under this name; it hands control to libFuzzer's driver.
@_cdecl("ConclaveWireFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzOne)
}
#else
@main
enum Replay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                exit(2)
            }
            WireFuzz.run(Array(data))
        }
    }
}
#endif
