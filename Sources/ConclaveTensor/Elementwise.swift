/// Element-wise passes the training step makes between BLAS calls, written on SIMD vectors: the scalar forms
/// compiled to a branch per element, and a ReLU mask's branch is a coin flip (half the activations are zero).
public enum Elementwise {
    /// p[i] ← a[i] > 0 ? p[i] : 0 — the ReLU derivative applied to a delta.
    @inlinable
    public static func reluMask(_ p: UnsafeMutablePointer<Float>, by a: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let av = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let pv = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: pv.replacing(with: 0, where: av .<= 0), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            if !(a[i] > 0) { p[i] = 0 }
            i += 1
        }
    }

    /// x[i] ← max(x[i], 0).
    @inlinable
    public static func relu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(x + i).storeBytes(of: v.replacing(with: 0, where: v .< 0), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            x[i] = max(x[i], 0)
            i += 1
        }
    }

    /// Calls `body(i)` for every i < n with words[i] < threshold, in increasing order — a Poisson sample's
    /// members, sixteen words compared at a time (most blocks of sixteen hold none).
    @inlinable
    public static func forEachBelow(_ threshold: UInt32, in words: UnsafePointer<UInt32>, count n: Int,
                                    _ body: (Int) -> Void) {
        let t = SIMD16<UInt32>(repeating: threshold)
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(words + i).loadUnaligned(as: SIMD16<UInt32>.self)
            let hits = v .< t
            if any(hits) {
                for k in 0..<16 where hits[k] { body(i + k) }
            }
            i += 16
        }
        while i < n {
            if words[i] < threshold { body(i) }
            i += 1
        }
    }
}
