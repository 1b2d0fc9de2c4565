import ConclaveTensor
import Testing

@Suite struct BLASTests {
    /// Row-major reference product, op(A)·op(B).
    func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool, transB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    s += av * bv
                }
                c[i * n + j] = s
            }
        }
        return c
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmMatchesNaiveProduct(transA: Bool, transB: Bool) {
        let m = 5, n = 7, k = 3
        let a = (0..<(m * k)).map { Float($0 % 7) - 3 }
        let b = (0..<(k * n)).map { Float($0 % 5) * 0.5 - 1 }
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: ap.baseAddress!,
                              lda: transA ? m : k, b: bp.baseAddress!, ldb: transB ? k : n, c: cp.baseAddress!, ldc: n)
                }
            }
        }
        let expected = naive(a, b, m: m, n: n, k: k, transA: transA, transB: transB)
        for (x, y) in zip(c, expected) { #expect(abs(x - y) < 1e-5) }
    }

    @Test func vectorHelpers() {
        var v: [Float] = [3, 4]
        #expect(v.l2Norm == 5)
        v.addScaled([1, 1], by: 2)
        #expect(v == [5, 6])
        v.scale(by: 0.5)
        #expect(v == [2.5, 3])
        #expect(v.subtracting([0.5, 1]) == [2, 2])
    }
}
