import ConclaveTensor

/// Per-layer activation and delta buffers for one batch size, at stable addresses (the passes hand them to
/// BLAS and to each other as pointers). Owned by one `Network`.
final class NetworkScratch {
    let capacity: Int
    /// acts[l+1] is layer l's output (pre-softmax at the top); acts[0] is unused (the batch is read in place).
    let acts: [UnsafeMutablePointer<Float>]
    let deltas: [UnsafeMutablePointer<Float>]

    init(widths: [Int], batch: Int) {
        capacity = batch
        acts = widths.map { .allocate(capacity: max(1, batch * $0)) }
        deltas = widths.map { .allocate(capacity: max(1, batch * $0)) }
    }

    deinit {
        acts.forEach { $0.deallocate() }
        deltas.forEach { $0.deallocate() }
    }
}

/// Forward and backward passes of a `ModelSpec` over a flat parameter vector, on OpenBLAS.
/// Holds scratch buffers sized for one batch, so it is reused across steps rather than shared.
public struct Network {
    public let spec: ModelSpec
    private let layers: [(inputs: Int, outputs: Int)]
    private let offsets: [(weight: Int, bias: Int)]
    private var scratch: NetworkScratch?

    public init(spec: ModelSpec) {
        self.spec = spec
        self.layers = spec.layers
        self.offsets = spec.offsets
    }

    /// Scratch for `batch` rows, owned by this value alone: a copy of a `Network` gets its own on its first
    /// pass, so copies never write into each other's buffers.
    private mutating func reserve(batch: Int) {
        if isKnownUniquelyReferenced(&scratch), let capacity = scratch?.capacity, batch <= capacity { return }
        scratch = NetworkScratch(widths: spec.widths, batch: max(1, batch, scratch?.capacity ?? 0))
    }

    /// Layer l's input for the last forward pass: the caller's batch for l = 0.
    func activations(_ l: Int, input x: UnsafePointer<Float>) -> UnsafePointer<Float> {
        l == 0 ? x : UnsafePointer(scratch!.acts[l])
    }

    /// δ of layer l's output (l ≥ 1), as the last backward pass left it.
    func deltaPointer(_ l: Int) -> UnsafeMutablePointer<Float> { scratch!.deltas[l] }

    /// Computes logits for `batch` rows of `x` into the top activations.
    mutating func forward(params: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: Int) {
        reserve(batch: batch)
        for (l, layer) in layers.enumerated() {
            let out = scratch!.acts[l + 1]
            // Z = A · Wᵀ, then the bias (and the ReLU below the top) in one pass.
            BLAS.gemm(transB: true, m: batch, n: layer.outputs, k: layer.inputs,
                      a: activations(l, input: x), lda: layer.inputs, b: params + offsets[l].weight,
                      ldb: layer.inputs, beta: 0, c: out, ldc: layer.outputs)
            Elementwise.addBias(out, params + offsets[l].bias, rows: batch, width: layer.outputs,
                                relu: l < layers.count - 1)
        }
    }

    /// δ_top = (softmax(z) − onehot(y)) / divisor for every row of the last forward pass; returns the summed loss.
    mutating func outputDeltas(labels: UnsafePointer<Int32>, batch: Int, divisor: Float) -> Float {
        let top = layers.count, classes = spec.classCount
        let z = scratch!.acts[top], d = scratch!.deltas[top]
        var loss: Float = 0
        for r in 0..<batch {
            let zr = z + r * classes, dr = d + r * classes
            loss += Network.softmax(zr, into: dr, count: classes, label: Int(labels[r]))
            dr[Int(labels[r])] -= 1
            if divisor != 1 { for c in 0..<classes { dr[c] /= divisor } }
        }
        return loss
    }

    /// Mean softmax cross-entropy over the batch; its gradient ∇ goes into `grad` as grad ← decay·grad + gain·∇.
    /// With decay 0 `grad` is overwritten; SGD with momentum passes its (scaled) velocity, decay 1 and its gain,
    /// so sgemm itself performs the momentum update and no separate pass over the gradient is needed.
    public mutating func lossAndGradient(params: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                         labels: UnsafePointer<Int32>, batch: Int,
                                         grad: UnsafeMutablePointer<Float>, decay: Float = 0, gain: Float = 1) -> Float {
        forward(params: params, x: x, batch: batch)
        let top = layers.count
        let loss = outputDeltas(labels: labels, batch: batch, divisor: Float(batch))
        for l in stride(from: top - 1, through: 0, by: -1) {
            let layer = layers[l]
            let a = activations(l, input: x), d = UnsafePointer(deltaPointer(l + 1))
            // dW = δᵀ · A   (outputs × inputs)
            BLAS.gemm(transA: true, m: layer.outputs, n: layer.inputs, k: batch, alpha: gain, a: d, lda: layer.outputs,
                      b: a, ldb: layer.inputs, beta: decay, c: grad + offsets[l].weight, ldc: layer.inputs)
            // db = column sums of δ
            let db = grad + offsets[l].bias
            if decay != 1 { for o in 0..<layer.outputs { db[o] *= decay } }
            for r in 0..<batch {
                let row = d + r * layer.outputs
                if gain == 1 {
                    for o in 0..<layer.outputs { db[o] += row[o] }
                } else {
                    for o in 0..<layer.outputs { db[o] += gain * row[o] }
                }
            }
            guard l > 0 else { continue }
            // δ_prev = (δ · W) ⊙ [a > 0]
            let p = deltaPointer(l)
            BLAS.gemm(m: batch, n: layer.inputs, k: layer.outputs, a: d, lda: layer.outputs,
                      b: params + offsets[l].weight, ldb: layer.inputs, c: p, ldc: layer.inputs)
            Elementwise.reluMask(p, by: a, count: batch * layer.inputs)
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
        let classes = spec.classCount, z = UnsafePointer(scratch!.acts[layers.count])
        var loss: Float = 0
        var correct = 0
        var p = [Float](repeating: 0, count: classes)
        p.withUnsafeMutableBufferPointer { pb in
            for r in 0..<batch {
                let zr = z + r * classes
                loss += Network.softmax(zr, into: pb.baseAddress!, count: classes, label: Int(labels[r]))
                var best = 0
                for c in 1..<classes where zr[c] > zr[best] { best = c }
                if best == Int(labels[r]) { correct += 1 }
            }
        }
        return (loss, correct)
    }
}
