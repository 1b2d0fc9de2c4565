import COpenBLAS

/// Thin, typed access to the OpenBLAS routines the trainer and the aggregator use. Row-major throughout.
public enum BLAS {
    /// C ← α·op(A)·op(B) + β·C, where op(A) is m×k and op(B) is k×n.
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// y ← α·x + y
    public static func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(blasint(n), alpha, x, 1, y, 1)
    }

    /// x ← α·x
    public static func scal(_ n: Int, _ alpha: Float, _ x: UnsafeMutablePointer<Float>) {
        cblas_sscal(blasint(n), alpha, x, 1)
    }

    /// x · y.
    public static func dot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(blasint(n), x, 1, y, 1)
    }

    /// Euclidean norm of x.
    public static func nrm2(_ n: Int, _ x: UnsafePointer<Float>) -> Float {
        cblas_snrm2(blasint(n), x, 1)
    }

    /// Limits OpenBLAS's worker threads (several agents on one machine should not oversubscribe it).
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(count))
    }
}
