/// Whole-vector helpers over `[Float]`, the representation of model weights and updates.
extension Array where Element == Float {
    /// self ← self + α·x. Both must have the same length.
    public mutating func addScaled(_ x: [Float], by alpha: Float) {
        precondition(count == x.count, "length mismatch: \(count) vs \(x.count)")
        let n = count
        x.withUnsafeBufferPointer { xp in
            withUnsafeMutableBufferPointer { yp in
                guard n > 0 else { return }
                BLAS.axpy(n, alpha, xp.baseAddress!, yp.baseAddress!)
            }
        }
    }

    public mutating func scale(by alpha: Float) {
        let n = count
        withUnsafeMutableBufferPointer { p in
            guard n > 0 else { return }
            BLAS.scal(n, alpha, p.baseAddress!)
        }
    }

    /// Euclidean norm.
    public var l2Norm: Float {
        withUnsafeBufferPointer { p in count == 0 ? 0 : BLAS.nrm2(count, p.baseAddress!) }
    }

    /// Element-wise difference self − other.
    public func subtracting(_ other: [Float]) -> [Float] {
        var out = self
        out.addScaled(other, by: -1)
        return out
    }
}
