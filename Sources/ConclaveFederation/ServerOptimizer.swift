/// How the coordinator turns the round's mean update into the next global model (Reddi et al., ICLR 2021,
/// "Adaptive Federated Optimization"). FedAvg with learning rate 1 is plain model averaging.
public struct ServerOptimizerConfig: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case fedavg
        case fedadam
        case fedyogi
    }

    public var kind: Kind
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    /// Adaptivity floor τ: larger is closer to FedAvg with momentum.
    public var tau: Double

    public init(kind: Kind = .fedavg, learningRate: Double? = nil, beta1: Double = 0.9, beta2: Double = 0.99,
                tau: Double = 1e-3) {
        self.kind = kind
        self.learningRate = learningRate ?? (kind == .fedavg ? 1.0 : 0.01)
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
    }
}

/// The server optimiser's state: its moment vectors, checkpointed with the model so a restart resumes it.
public struct ServerOptimizer: Sendable, Equatable {
    public let config: ServerOptimizerConfig
    public private(set) var m: [Float]
    public private(set) var v: [Float]

    public init(config: ServerOptimizerConfig, parameterCount: Int, m: [Float]? = nil, v: [Float]? = nil) {
        self.config = config
        let stateful = config.kind != .fedavg
        self.m = m ?? (stateful ? [Float](repeating: 0, count: parameterCount) : [])
        self.v = v ?? (stateful ? [Float](repeating: Float(config.tau * config.tau), count: parameterCount) : [])
    }

    /// global ← global + step(Δ), where Δ is the example-weighted mean of the silos' updates.
    public mutating func apply(delta: [Float], to global: inout [Float]) {
        precondition(delta.count == global.count, "delta and model sizes differ")
        let lr = Float(config.learningRate)
        if config.kind == .fedavg {
            global.withUnsafeMutableBufferPointer { g in
                delta.withUnsafeBufferPointer { d in for i in 0..<d.count { g[i] += lr * d[i] } }
            }
            return
        }
        let b1 = Float(config.beta1), b2 = Float(config.beta2), tau = Float(config.tau)
        let yogi = config.kind == .fedyogi
        global.withUnsafeMutableBufferPointer { g in
            delta.withUnsafeBufferPointer { d in
                m.withUnsafeMutableBufferPointer { m in
                    v.withUnsafeMutableBufferPointer { v in
                        for i in 0..<d.count {
                            let di = d[i], d2 = di * di
                            m[i] = b1 * m[i] + (1 - b1) * di
                            if yogi {
                                let s: Float = v[i] > d2 ? 1 : (v[i] < d2 ? -1 : 0)
                                v[i] = v[i] - (1 - b2) * d2 * s
                            } else {
                                v[i] = b2 * v[i] + (1 - b2) * d2
                            }
                            g[i] += lr * m[i] / (v[i].squareRoot() + tau)
                        }
                    }
                }
            }
        }
    }
}
