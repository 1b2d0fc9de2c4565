import ConclaveTensor

/// Local optimisers over a flat parameter vector.
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
    case sgd
    case adam
}

public protocol Optimizer {
    /// params ← params − update(grad). Both buffers have the model's parameter count.
    mutating func step(params: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int)

    /// One training step: `gradient(buffer, decay, gain)` must write buffer ← decay·buffer + gain·∇ and return
    /// the loss. Optimisers that keep a running sum of gradients (momentum) let the gradient land in it directly.
    mutating func step(params: UnsafeMutablePointer<Float>, count: Int,
                       gradient: (UnsafeMutablePointer<Float>, Float, Float) -> Float) -> Float
}


/// SGD with (heavy-ball) momentum, as in PyTorch: v ← μv + g; p ← p − ηv.
///
/// The gradient closure path keeps the velocity as v = s·u with s = μᵗ: then v ← μv + g is u ← u + g/s, an
/// sgemm with β = 1 and α = 1/s. OpenBLAS runs a separate pass over C for any β ≠ 1 (sgemm_beta: 800 KB of
/// the first layer's weights, read and written every step), so β = 1 saves that pass — measured 2026-12-05,
/// 2 threads, 784-256-10, five alternating pairs: 0.331–0.339 s an epoch against 0.359–0.370 s. u is rescaled (u ← s·u, s ← 1) once
/// s falls below `rescaleBelow`, every ~130 steps at μ = 0.9, so u stays within 2²⁰ of v.
public struct SGD: Optimizer {
    public let learningRate: Float
    public let momentum: Float
    /// The momentum buffer u (v = scale·u), or the plain gradient when momentum is 0.
    private var velocity: [Float] = []
    private var scale = 1.0
    static let rescaleBelow = 0x1p-20

    public init(learningRate: Float, momentum: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public mutating func step(params: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int) {
        guard momentum != 0 else {
            BLAS.axpy(count, -learningRate, grad, params)
            return
        }
        prepare(count: count)
        settle()
        let mu = momentum, lr = learningRate
        // One fused pass: cheaper than two BLAS level-1 calls at these sizes (measured).
        velocity.withUnsafeMutableBufferPointer { v in
            for i in 0..<count {
                v[i] = mu * v[i] + grad[i]
                params[i] -= lr * v[i]
            }
        }
    }

    /// u ← u + ∇/s is computed in place by the gradient itself (β = 1), then p ← p − η·s·u.
    public mutating func step(params: UnsafeMutablePointer<Float>, count: Int,
                              gradient: (UnsafeMutablePointer<Float>, Float, Float) -> Float) -> Float {
        prepare(count: count)
        let lr = learningRate
        guard momentum > 0, momentum < 1 else {
            // Plain SGD (μ = 0), or a μ the scaling does not serve (run specs allow [0, 1)): β = μ as is.
            settle()
            return velocity.withUnsafeMutableBufferPointer { vb in
                let loss = gradient(vb.baseAddress!, momentum, 1)
                BLAS.axpy(count, -lr, vb.baseAddress!, params)
                return loss
            }
        }
        if scale * Double(momentum) < Self.rescaleBelow { settle() }
        scale *= Double(momentum)
        let s = scale
        return velocity.withUnsafeMutableBufferPointer { vb in
            let v = vb.baseAddress!
            let loss = gradient(v, 1, Float(1 / s))
            // p ← p − ηv is a saxpy: OpenBLAS splits it over its own threads, already awake from the sgemm
            // calls just made (measured: cheaper than handing halves to other threads).
            BLAS.axpy(count, -lr * Float(s), v, params)
            return loss
        }
    }

    private mutating func prepare(count: Int) {
        guard velocity.count != count else { return }
        velocity = [Float](repeating: 0, count: count)
        scale = 1
    }

    /// Folds the scale into the buffer (u ← s·u, s ← 1), so the buffer holds v itself.
    private mutating func settle() {
        guard scale != 1 else { return }
        let s = Float(scale), count = velocity.count
        velocity.withUnsafeMutableBufferPointer { BLAS.scal(count, s, $0.baseAddress!) }
        scale = 1
    }
}

/// Adam (Kingma & Ba 2015) with bias correction.
public struct Adam: Optimizer {
    public let learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    private var m: [Float] = []
    private var v: [Float] = []
    /// Gradient scratch, reused across steps.
    private var g: [Float] = []
    private var t = 0

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public mutating func step(params: UnsafeMutablePointer<Float>, count: Int,
                              gradient: (UnsafeMutablePointer<Float>, Float, Float) -> Float) -> Float {
        if g.count != count { g = [Float](repeating: 0, count: count) }
        // Take the scratch out of `self` while `step` mutates `self` (exclusive access), then put it back.
        var scratch = g
        g = []
        defer { g = scratch }
        return scratch.withUnsafeMutableBufferPointer { buffer in
            let loss = gradient(buffer.baseAddress!, 0, 1)
            step(params: params, grad: buffer.baseAddress!, count: count)
            return loss
        }
    }

    public mutating func step(params: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int) {
        if m.count != count {
            m = [Float](repeating: 0, count: count)
            v = [Float](repeating: 0, count: count)
        }
        t += 1
        let b1 = beta1, b2 = beta2, eps = epsilon
        let stepSize = learningRate * Float((1 - _pow(Double(b2), Double(t))).squareRoot() / (1 - _pow(Double(b1), Double(t))))
        m.withUnsafeMutableBufferPointer { mb in
            v.withUnsafeMutableBufferPointer { vb in
                let m = mb.baseAddress!, v = vb.baseAddress!
                // Split over the training threads (measured 2026-12-05, 2 threads: an Adam epoch of
                // `conclave bench training --optimizer adam` 0.77 s against 0.91 s on one).
                Parallel.chunks(count) { range in
                    // Eight lanes at a time: the scalar loop did not vectorise (the four pointers may alias), and
                    // its square root and divide dominated an Adam epoch. Same operations per lane, same results.
                    var i = range.lowerBound
                    while i + 8 <= range.upperBound {
                        let g = load(grad + i), mi = b1 * load(m + i) + (1 - b1) * g
                        let vi = b2 * load(v + i) + (1 - b2) * g * g
                        store(mi, m + i)
                        store(vi, v + i)
                        store(load(params + i) - stepSize * mi / (vi.squareRoot() + eps), params + i)
                        i += 8
                    }
                    for i in i..<range.upperBound {
                        let g = grad[i]
                        m[i] = b1 * m[i] + (1 - b1) * g
                        v[i] = b2 * v[i] + (1 - b2) * g * g
                        params[i] -= stepSize * m[i] / (v[i].squareRoot() + eps)
                    }
                }
            }
        }
    }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { load(UnsafePointer(p)) }

@inline(__always) private func store(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD8<Float>.self)
}
