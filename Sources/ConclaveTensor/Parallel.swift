import COpenBLAS
import Dispatch

/// Splits an element-wise pass over the threads training may use. sgemm already runs on OpenBLAS's threads;
/// the passes between the calls (Adam's update over every parameter, above all) would otherwise run on one
/// core while the others wait. One setting governs both: the OpenBLAS thread count (`[training]
/// threads`, `BLAS.setThreads`).
public enum Parallel {
    /// The threads a pass may use.
    public static var threads: Int { max(1, Int(openblas_get_num_threads())) }

    /// Calls `body` on disjoint ranges covering 0..<count, concurrently when each thread gets at least `minimum`
    /// elements (below that, starting threads costs more than it saves), else once on the caller's thread.
    /// `body` may only touch its own range's elements: that is what makes the concurrent calls safe.
    public static func chunks(_ count: Int, minimum: Int = 32_768, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count / max(1, minimum))
        guard parts > 1 else { return body(0..<count) }
        withoutActuallyEscaping(body) { body in
            let pass = DisjointPass(body: body)  // returns before `body` does: it never escapes
            DispatchQueue.concurrentPerform(iterations: parts) { k in
                pass.body((k * count / parts)..<((k + 1) * count / parts))
            }
        }
    }

    private struct DisjointPass: @unchecked Sendable {
        let body: (Range<Int>) -> Void
    }
}
