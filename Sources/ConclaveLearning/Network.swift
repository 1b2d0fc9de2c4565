import ConclaveTensor

/// Forward and backward passes of a `ModelSpec` over a flat parameter vector, on OpenBLAS.
/// Holds scratch buffers sized for one batch, so it is reused across steps rather than shared.
public struct Network {
    public let spec: ModelSpec
    private let layers: [(inputs: Int, outputs: Int)]
    private let offsets: [(weight: Int, bias: Int)]
    private var capacity = 0
    /// Activations per layer: acts[l+1] is layer l's output (pre-softmax at the top). acts[0] stays empty:
    /// the first layer reads the caller's batch in place.
    var acts: [[Float]] = []
    var deltas: [[Float]] = []

    public init(spec: ModelSpec) {
        self.spec = spec
        self.layers = spec.layers
        self.offsets = spec.offsets
    }

    private mutating func reserve(batch: Int) {
        guard batch > capacity else { return }
        capacity = batch
        acts = spec.widths.enumerated().map { [Float](repeating: 0, count: $0.offset == 0 ? 0 : batch * $0.element) }
        deltas = spec.widths.enumerated().map { [Float](repeating: 0, count: $0.offset == 0 ? 0 : batch * $0.element) }
    }

    /// Computes logits for `batch` rows of `x` into acts.last; returns nothing, read with `logits`.
    mutating func forward(params: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: Int) {
        reserve(batch: batch)
        for (l, layer) in layers.enumerated() {
            let isLast = l == layers.count - 1
            let input = acts[l]
            acts[l + 1].withUnsafeMutableBufferPointer { outBuf in
                input.withUnsafeBufferPointer { inBuf in
                    let inputs = l == 0 ? x : UnsafePointer(inBuf.baseAddress!)
                    let out = outBuf.baseAddress!
                    let bias = params + offsets[l].bias
                    // Seed every row with the bias, then Z += A · Wᵀ.
                    for r in 0..<batch { (out + r * layer.outputs).update(from: bias, count: layer.outputs) }
                    BLAS.gemm(transB: true, m: batch, n: layer.outputs, k: layer.inputs,
                              a: inputs, lda: layer.inputs, b: params + offsets[l].weight,
                              ldb: layer.inputs, beta: 1, c: out, ldc: layer.outputs)
                    if !isLast {
                        for i in 0..<(batch * layer.outputs) { out[i] = max(out[i], 0) }  // branch-free: vectorises
                    }
                }
            }
        }
    }

    /// δ_top = (softmax(z) − onehot(y)) / divisor for every row of the last forward pass; returns the summed loss.
    mutating func outputDeltas(labels: UnsafePointer<Int32>, batch: Int, divisor: Float) -> Float {
        let top = layers.count, classes = spec.classCount
        var loss: Float = 0
        acts[top].withUnsafeBufferPointer { z in
            deltas[top].withUnsafeMutableBufferPointer { d in
                for r in 0..<batch {
                    let zr = z.baseAddress! + r * classes, dr = d.baseAddress! + r * classes
                    loss += Network.softmax(zr, into: dr, count: classes, label: Int(labels[r]))
                    dr[Int(labels[r])] -= 1
                    if divisor != 1 { for c in 0..<classes { dr[c] /= divisor } }
                }
            }
        }
        return loss
    }

    /// Mean softmax cross-entropy over the batch; its gradient ∇ goes into `grad` as grad ← decay·grad + ∇.
    /// With decay 0 `grad` is overwritten; SGD with momentum passes its velocity and μ, so sgemm itself
    /// performs the momentum update and no separate pass over the gradient is needed.
    public mutating func lossAndGradient(params: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                         labels: UnsafePointer<Int32>, batch: Int,
                                         grad: UnsafeMutablePointer<Float>, decay: Float = 0) -> Float {
        forward(params: params, x: x, batch: batch)
        let top = layers.count
        let loss = outputDeltas(labels: labels, batch: batch, divisor: Float(batch))
        for l in stride(from: top - 1, through: 0, by: -1) {
            let layer = layers[l]
            let a = acts[l]
            let delta = deltas[l + 1]
            delta.withUnsafeBufferPointer { dBuf in
                a.withUnsafeBufferPointer { aBuf in
                    let d = dBuf.baseAddress!
                    // dW = δᵀ · A   (outputs × inputs)
                    BLAS.gemm(transA: true, m: layer.outputs, n: layer.inputs, k: batch,
                              a: d, lda: layer.outputs, b: l == 0 ? x : aBuf.baseAddress!, ldb: layer.inputs,
                              beta: decay, c: grad + offsets[l].weight, ldc: layer.inputs)
                    // db = column sums of δ
                    let db = grad + offsets[l].bias
                    for o in 0..<layer.outputs { db[o] *= decay }
                    for r in 0..<batch {
                        let row = d + r * layer.outputs
                        for o in 0..<layer.outputs { db[o] += row[o] }
                    }
                    guard l > 0 else { return }
                    // δ_prev = (δ · W) ⊙ [a > 0]
                    deltas[l].withUnsafeMutableBufferPointer { prev in
                        let p = prev.baseAddress!
                        BLAS.gemm(m: batch, n: layer.inputs, k: layer.outputs, a: d, lda: layer.outputs,
                                  b: params + offsets[l].weight, ldb: layer.inputs, c: p, ldc: layer.inputs)
                        for i in 0..<(batch * layer.inputs) { p[i] = aBuf[i] > 0 ? p[i] : 0 }
                    }
                }
            }
        }
        return loss / Float(batch)
    }

    /// Writes softmax(z) into `p` and returns −log p[label], computed stably.
    @inline(__always)
    static func softmax(_ z: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>, count: Int, label: Int) -> Float {
        var m = z[0]
        for c in 1..<count where z[c] > m { m = z[c] }
        var sum: Float = 0
        for c in 0..<count {
            p[c] = _expf(z[c] - m)
            sum += p[c]
        }
        for c in 0..<count { p[c] /= sum }
        return -(z[label] - m - _logf(sum))
    }

    /// Loss and correct-prediction count over `batch` rows, without a gradient.
    public mutating func evaluate(params: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                  labels: UnsafePointer<Int32>, batch: Int) -> (loss: Float, correct: Int) {
        forward(params: params, x: x, batch: batch)
        let classes = spec.classCount
        var loss: Float = 0
        var correct = 0
        var p = [Float](repeating: 0, count: classes)
        acts[layers.count].withUnsafeBufferPointer { z in
            p.withUnsafeMutableBufferPointer { pb in
                for r in 0..<batch {
                    let zr = z.baseAddress! + r * classes
                    loss += Network.softmax(zr, into: pb.baseAddress!, count: classes, label: Int(labels[r]))
                    var best = 0
                    for c in 1..<classes where zr[c] > zr[best] { best = c }
                    if best == Int(labels[r]) { correct += 1 }
                }
            }
        }
        return (loss, correct)
    }
}
