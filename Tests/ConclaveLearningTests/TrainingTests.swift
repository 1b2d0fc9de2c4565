import Foundation
import ConclaveLearning
import ConclaveTesting
import Testing

@Suite struct TrainingTests {
    @Test(arguments: [OptimizerKind.sgd, .adam])
    func trainingLearnsSeparableData(optimizer: OptimizerKind) throws {
        let train = Fixtures.blobs(count: 600, seed: 1)
        let test = Fixtures.blobs(count: 300, seed: 2)
        let spec = try ModelSpec(architecture: .mlp, inputFeatures: 8, hidden: [16], classCount: 3)
        let initial = spec.initialParameters(seed: 3)
        let before = try Evaluator.evaluate(spec: spec, parameters: initial, data: test)
        let config = TrainingConfig(localEpochs: 3, batchSize: 16, learningRate: optimizer == .adam ? 0.01 : 0.05,
                                    optimizer: optimizer, momentum: 0.9, seed: 4)
        let result = try Trainer.train(spec: spec, parameters: initial, data: train, config: config)
        let after = try Evaluator.evaluate(spec: spec, parameters: result.parameters, data: test)
        #expect(after.accuracy > 0.95)
        #expect(after.loss < before.loss)
        #expect(result.steps == 3 * 38)  // 600/16 = 37.5 → 38 batches per epoch
        #expect(result.examples == 600)
    }

    @Test func shufflingIsSeeded() throws {
        let data = Fixtures.blobs(count: 100)
        let spec = try ModelSpec(architecture: .logreg, inputFeatures: 8, hidden: [], classCount: 3)
        let p = spec.initialParameters(seed: 1)
        let a = try Trainer.train(spec: spec, parameters: p, data: data, config: TrainingConfig(batchSize: 10, seed: 7))
        let b = try Trainer.train(spec: spec, parameters: p, data: data, config: TrainingConfig(batchSize: 10, seed: 7))
        let c = try Trainer.train(spec: spec, parameters: p, data: data, config: TrainingConfig(batchSize: 10, seed: 8))
        #expect(a.parameters == b.parameters)
        #expect(a.parameters != c.parameters)
    }

    @Test func sgdMomentumAndAdamFollowTheirFormulas() {
        var params: [Float] = [1, -1]
        let grad: [Float] = [0.5, -2]
        var sgd = SGD(learningRate: 0.1, momentum: 0.9)
        params.withUnsafeMutableBufferPointer { p in grad.withUnsafeBufferPointer { g in
            sgd.step(params: p.baseAddress!, grad: g.baseAddress!, count: 2)
            sgd.step(params: p.baseAddress!, grad: g.baseAddress!, count: 2)
        } }
        // v1 = g, v2 = 0.9g + g = 1.9g; p = p0 − 0.1(g + 1.9g) = p0 − 0.29g
        #expect(abs(params[0] - (1 - 0.29 * 0.5)) < 1e-6)
        #expect(abs(params[1] - (-1 + 0.29 * 2)) < 1e-6)

        var q: [Float] = [0]
        var adam = Adam(learningRate: 0.01)
        q.withUnsafeMutableBufferPointer { p in [Float(3)].withUnsafeBufferPointer { g in
            adam.step(params: p.baseAddress!, grad: g.baseAddress!, count: 1)
        } }
        // First Adam step moves by lr·sign(g) (bias-corrected m̂/√v̂ = 1).
        #expect(abs(q[0] + 0.01) < 1e-5)
    }

    /// Adam's eight-lane update gives what the textbook formula gives, lane for lane (19 = 8 + 8 + a tail of 3).
    @Test func adamVectorUpdateEqualsTheFormula() {
        let count = 19
        var params = (0..<count).map { Float($0) * 0.1 - 1 }, expected = params
        var m = [Float](repeating: 0, count: count), v = m
        var adam = Adam(learningRate: 0.01)
        for t in 1...3 {
            let grad = (0..<count).map { Float(($0 * 7 + t * 3) % 11) - 5 }
            params.withUnsafeMutableBufferPointer { p in grad.withUnsafeBufferPointer { g in
                adam.step(params: p.baseAddress!, grad: g.baseAddress!, count: count)
            } }
            let (b1, b2, eps): (Float, Float, Float) = (0.9, 0.999, 1e-8)
            let stepSize = 0.01 * Float((1 - pow(Double(b2), Double(t))).squareRoot() / (1 - pow(Double(b1), Double(t))))
            for i in 0..<count {
                m[i] = b1 * m[i] + (1 - b1) * grad[i]
                v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i]
                expected[i] -= stepSize * m[i] / (v[i].squareRoot() + eps)
            }
        }
        #expect(params == expected)
    }

    /// The fused path (sgemm accumulates ∇/μᵗ into the scaled velocity with β = 1) must equal the textbook
    /// step — also across the rescaling of the velocity (μ = 0.5: every 20 steps).
    @Test(arguments: [(Float(0.9), 3), (Float(0.5), 45), (Float(0), 3), (Float(1), 3)])
    func fusedMomentumStepEqualsTheTextbookStep(momentum: Float, steps: Int) throws {
        let spec = try ModelSpec(architecture: .mlp, inputFeatures: 8, hidden: [5], classCount: 3)
        let data = Fixtures.blobs(count: 16)
        var net = Network(spec: spec)
        let count = spec.parameterCount
        func gradient(_ p: [Float], into g: UnsafeMutablePointer<Float>, decay: Float, gain: Float) -> Float {
            p.withUnsafeBufferPointer { pb in data.features.withUnsafeBufferPointer { x in data.labels.withUnsafeBufferPointer { y in
                net.lossAndGradient(params: pb.baseAddress!, x: x.baseAddress!, labels: y.baseAddress!, batch: 16,
                                    grad: g, decay: decay, gain: gain)
            } } }
        }
        var fused = spec.initialParameters(seed: 1), classic = fused
        var a = SGD(learningRate: 0.1, momentum: momentum), b = SGD(learningRate: 0.1, momentum: momentum)
        var grad = [Float](repeating: 0, count: count)
        for _ in 0..<steps {
            let snapshot = fused
            _ = fused.withUnsafeMutableBufferPointer { p in
                a.step(params: p.baseAddress!, count: count) { g, decay, gain in
                    gradient(snapshot, into: g, decay: decay, gain: gain)
                }
            }
            _ = grad.withUnsafeMutableBufferPointer { gradient(classic, into: $0.baseAddress!, decay: 0, gain: 1) }
            classic.withUnsafeMutableBufferPointer { p in grad.withUnsafeBufferPointer { g in
                b.step(params: p.baseAddress!, grad: g.baseAddress!, count: count)
            } }
        }
        for (x, y) in zip(fused, classic) { #expect(abs(x - y) < 1e-5) }
        #expect(fused != spec.initialParameters(seed: 1))
    }

    @Test func shapeMismatchesAreErrors() throws {
        let spec = try ModelSpec(architecture: .logreg, inputFeatures: 4, hidden: [], classCount: 3)
        let data = Fixtures.blobs(count: 10, features: 8)
        #expect(throws: DataError.self) {
            try Trainer.train(spec: spec, parameters: spec.initialParameters(seed: 1), data: data, config: TrainingConfig())
        }
        #expect(throws: DataError.self) {
            try Trainer.train(spec: spec, parameters: [1, 2, 3], data: data, config: TrainingConfig())
        }
    }

    @Test func modelSpecValidation() {
        #expect(throws: DataError.self) { try ModelSpec(architecture: .mlp, inputFeatures: 4, hidden: [], classCount: 3) }
        #expect(throws: DataError.self) { try ModelSpec(architecture: .logreg, inputFeatures: 4, hidden: [3], classCount: 3) }
        #expect(throws: DataError.self) { try ModelSpec(architecture: .mlp, inputFeatures: 0, hidden: [3], classCount: 3) }
        let spec = try! ModelSpec(architecture: .mlp, inputFeatures: 784, hidden: [128], classCount: 10)
        #expect(spec.parameterCount == 784 * 128 + 128 + 128 * 10 + 10)
    }
}
