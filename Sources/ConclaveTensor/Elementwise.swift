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

    /// Adds `bias` to each of `rows` rows of `width` values, then clamps at 0 when `relu` — one pass after an
    /// sgemm with β = 0, instead of seeding the rows with the bias and a separate ReLU pass.
    @inlinable
    public static func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, width: Int,
                               relu: Bool) {
        let zero = SIMD8<Float>(repeating: 0)
        for r in 0..<rows {
            let row = x + r * width
            var c = 0
            while c + 8 <= width {
                var v = UnsafeRawPointer(row + c).loadUnaligned(as: SIMD8<Float>.self)
                v += UnsafeRawPointer(bias + c).loadUnaligned(as: SIMD8<Float>.self)
                if relu { v.replace(with: zero, where: v .< zero) }
                UnsafeMutableRawPointer(row + c).storeBytes(of: v, as: SIMD8<Float>.self)
                c += 8
            }
            while c < width {
                let v = row[c] + bias[c]
                row[c] = relu ? max(v, 0) : v
                c += 1
            }
        }
    }
}
