import ConclaveTensor

extension Network {
    /// Σᵢ clip(∇ℓᵢ) over the batch into `grad` (overwritten), each example's gradient scaled to L2 norm ≤ C —
    /// DP-SGD's sensitivity bound — without materialising any per-example gradient. For a dense layer the
    /// example's weight gradient is the outer product δᵢaᵢᵀ, so ‖δᵢaᵢᵀ‖² = ‖δᵢ‖²·‖aᵢ‖², and the bias adds ‖δᵢ‖²
    /// (the "ghost norm" identity). One backward pass for the deltas, the norms, then each layer's gradient by
    /// one GEMM from the deltas with row i scaled by min(1, C/‖∇ℓᵢ‖). Returns the summed loss and how many
    /// examples were clipped.
    /// `inputNorms`, when given, holds ‖xᵢ‖² for the batch's rows (a trainer computes them once per dataset).
    public mutating func clippedGradientSum(params: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                            labels: UnsafePointer<Int32>, batch: Int, clipNorm: Float,
                                            grad: UnsafeMutablePointer<Float>,
                                            inputNorms: UnsafePointer<Float>? = nil) -> (loss: Float, clipped: Int) {
        guard batch > 0 else {
            grad.update(repeating: 0, count: spec.parameterCount)
            return (0, 0)
        }
        forward(params: params, x: x, batch: batch)
        let layers = spec.layers, offsets = spec.offsets, top = layers.count
        // Per-example δ_top = softmax(z) − onehot(y), not divided by the batch.
        let loss = outputDeltas(labels: labels, batch: batch, divisor: 1)
        // Deltas of every layer: δ_prev = (δ · W) ⊙ [a > 0].
        for l in stride(from: top - 1, through: 1, by: -1) {
            let layer = layers[l]
            let delta = deltas[l + 1], a = acts[l]
            deltas[l].withUnsafeMutableBufferPointer { prev in
                delta.withUnsafeBufferPointer { d in
                    BLAS.gemm(m: batch, n: layer.inputs, k: layer.outputs, a: d.baseAddress!, lda: layer.outputs,
                              b: params + offsets[l].weight, ldb: layer.inputs, c: prev.baseAddress!, ldc: layer.inputs)
                }
                for i in 0..<(batch * layer.inputs) { prev[i] = a[i] > 0 ? prev[i] : 0 }
            }
        }
        // ‖∇ℓᵢ‖² = Σ_layers ‖δᵢ‖²·(‖aᵢ‖² + 1).
        var norms = [Float](repeating: 0, count: batch)
        for (l, layer) in layers.enumerated() {
            let delta = deltas[l + 1], a = acts[l]
            a.withUnsafeBufferPointer { aBuf in
                let input = l == 0 ? x : UnsafePointer(aBuf.baseAddress!)
                for r in 0..<batch {
                    var an: Float = 0, dn: Float = 0
                    if l == 0, let inputNorms { an = inputNorms[r] } else {
                        for i in 0..<layer.inputs { let v = input[r * layer.inputs + i]; an += v * v }
                    }
                    for o in 0..<layer.outputs { let v = delta[r * layer.outputs + o]; dn += v * v }
                    norms[r] += dn * (an + 1)
                }
            }
        }
        var clipped = 0
        let factors = norms.map { n2 -> Float in
            let n = n2.squareRoot()
            guard n > clipNorm else { return 1 }
            clipped += 1
            return clipNorm / n
        }
        // Each layer's clipped gradient sum: scale δ's rows, then dW = δᵀA and db = Σ rows of δ.
        for (l, layer) in layers.enumerated() {
            let a = acts[l]
            deltas[l + 1].withUnsafeMutableBufferPointer { d in
                for r in 0..<batch where factors[r] != 1 {
                    for o in 0..<layer.outputs { d[r * layer.outputs + o] *= factors[r] }
                }
                a.withUnsafeBufferPointer { aBuf in
                    BLAS.gemm(transA: true, m: layer.outputs, n: layer.inputs, k: batch, a: d.baseAddress!,
                              lda: layer.outputs, b: l == 0 ? x : aBuf.baseAddress!, ldb: layer.inputs,
                              beta: 0, c: grad + offsets[l].weight, ldc: layer.inputs)
                }
                let db = grad + offsets[l].bias
                db.update(repeating: 0, count: layer.outputs)
                for r in 0..<batch {
                    for o in 0..<layer.outputs { db[o] += d[r * layer.outputs + o] }
                }
            }
        }
        return (loss, clipped)
    }
}
