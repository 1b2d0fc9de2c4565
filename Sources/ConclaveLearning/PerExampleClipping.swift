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
        // ‖∇ℓᵢ‖² = Σ_layers ‖δᵢ‖²·(‖aᵢ‖² + 1), accumulated layer by layer as the deltas appear.
        var norms = [Float](repeating: 0, count: batch)
        norms.withUnsafeMutableBufferPointer { nb in
            let norms = nb.baseAddress!
            for l in stride(from: top - 1, through: 0, by: -1) {
                let layer = layers[l]
                let a = activations(l, input: x)
                let d = UnsafePointer(deltaPointer(l + 1))
                for r in 0..<batch {
                    let an = l == 0 && inputNorms != nil ? inputNorms![r]
                        : BLAS.dot(layer.inputs, a + r * layer.inputs, a + r * layer.inputs)
                    let dn = BLAS.dot(layer.outputs, d + r * layer.outputs, d + r * layer.outputs)
                    norms[r] += dn * (an + 1)
                }
                guard l > 0 else { continue }
                // δ_prev = (δ · W) ⊙ [a > 0].
                let prev = deltaPointer(l)
                BLAS.gemm(m: batch, n: layer.inputs, k: layer.outputs, a: d, lda: layer.outputs,
                          b: params + offsets[l].weight, ldb: layer.inputs, c: prev, ldc: layer.inputs)
                Elementwise.reluMask(prev, by: a, count: batch * layer.inputs)
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
            let d = deltaPointer(l + 1), width = layer.outputs
            let db = grad + offsets[l].bias
            db.update(repeating: 0, count: width)
            for r in 0..<batch {
                let row = d + r * width, factor = factors[r]
                for o in 0..<width {
                    row[o] *= factor
                    db[o] += row[o]
                }
            }
            BLAS.gemm(transA: true, m: width, n: layer.inputs, k: batch, a: d, lda: width,
                      b: activations(l, input: x), ldb: layer.inputs, beta: 0, c: grad + offsets[l].weight,
                      ldc: layer.inputs)
        }
        return (loss, clipped)
    }
}
