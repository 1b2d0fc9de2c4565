import ConclaveLearning
import Dispatch
import Synchronization
import ConclaveTesting
import Testing

/// Back-propagation checked against central finite differences (in Double, on a small network).
@Suite struct GradientTests {
    func loss(_ net: inout Network, _ params: [Float], _ data: Dataset, _ scratch: inout [Float]) -> Double {
        params.withUnsafeBufferPointer { p in
            data.features.withUnsafeBufferPointer { x in
                data.labels.withUnsafeBufferPointer { y in
                    scratch.withUnsafeMutableBufferPointer { g in
                        Double(net.lossAndGradient(params: p.baseAddress!, x: x.baseAddress!, labels: y.baseAddress!,
                                                   batch: data.count, grad: g.baseAddress!))
                    }
                }
            }
        }
    }

    @Test(arguments: [
        try! ModelSpec(architecture: .mlp, inputFeatures: 6, hidden: [5, 4], classCount: 3),
        try! ModelSpec(architecture: .logreg, inputFeatures: 6, hidden: [], classCount: 4),
    ])
    func gradientMatchesFiniteDifferences(spec: ModelSpec) {
        let data = Fixtures.blobs(count: 7, features: 6, classes: spec.classCount, seed: 5, spread: 1.5)
        var net = Network(spec: spec)
        let params = spec.initialParameters(seed: 11)
        var grad = [Float](repeating: 0, count: params.count)
        _ = loss(&net, params, data, &grad)
        var scratch = grad
        // A small step keeps ReLU kinks out of the difference; the error floor absorbs Float32 rounding.
        let h: Float = 1e-3
        var worst = 0.0
        for i in 0..<params.count {
            var plus = params, minus = params
            plus[i] += h
            minus[i] -= h
            let numeric = (loss(&net, plus, data, &scratch) - loss(&net, minus, data, &scratch)) / Double(2 * h)
            let err = abs(numeric - Double(grad[i])) / max(1e-2, abs(numeric) + abs(Double(grad[i])))
            worst = max(worst, err)
        }
        #expect(worst < 2e-2, "worst relative gradient error \(worst)")
    }
}

extension GradientTests {
    /// DP-SGD's clipped sum via the ghost-norm identity equals clipping each example's own gradient (computed
    /// one example at a time) and summing.
    @Test func clippedSumEqualsClippingEachExampleGradient() {
        let spec = try! ModelSpec(architecture: .mlp, inputFeatures: 6, hidden: [5, 4], classCount: 3)
        let data = Fixtures.blobs(count: 9, features: 6, classes: 3, seed: 8, spread: 2)
        let params = spec.initialParameters(seed: 3)
        var net = Network(spec: spec)
        let perExample = (0..<data.count).map { i -> [Float] in
            var g = [Float](repeating: 0, count: params.count)
            _ = loss(&net, params, data.subset([i]), &g)
            return g
        }
        let norms = perExample.map { g in g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        let bound = norms.sorted()[norms.count / 2]  // the median: some examples are clipped, some not
        var explicit = [Double](repeating: 0, count: params.count)
        for (g, norm) in zip(perExample, norms) {
            let factor = min(1, bound / norm)
            for j in g.indices { explicit[j] += Double(g[j]) * factor }
        }
        var grad = [Float](repeating: 0, count: params.count)
        let result = params.withUnsafeBufferPointer { p in
            data.features.withUnsafeBufferPointer { x in
                data.labels.withUnsafeBufferPointer { y in
                    grad.withUnsafeMutableBufferPointer { g in
                        net.clippedGradientSum(params: p.baseAddress!, x: x.baseAddress!, labels: y.baseAddress!,
                                               batch: data.count, clipNorm: Float(bound), grad: g.baseAddress!)
                    }
                }
            }
        }
        #expect(result.clipped == norms.filter { $0 > bound * 1.0001 }.count)
        for j in grad.indices {
            #expect(abs(Double(grad[j]) - explicit[j]) < 1e-4 * max(1, abs(explicit[j])), "parameter \(j)")
        }
        // The same with the input rows' squared norms supplied (as PrivateTrainer does, once per dataset).
        let rowNorms = (0..<data.count).map { i in
            (0..<data.featureCount).reduce(Float(0)) { $0 + data.features[i * data.featureCount + $1] * data.features[i * data.featureCount + $1] }
        }
        var again = [Float](repeating: 0, count: grad.count)
        _ = params.withUnsafeBufferPointer { p in
            data.features.withUnsafeBufferPointer { x in
                data.labels.withUnsafeBufferPointer { y in
                    again.withUnsafeMutableBufferPointer { g in
                        rowNorms.withUnsafeBufferPointer { n in
                            net.clippedGradientSum(params: p.baseAddress!, x: x.baseAddress!, labels: y.baseAddress!,
                                                   batch: data.count, clipNorm: Float(bound), grad: g.baseAddress!,
                                                   inputNorms: n.baseAddress!)
                        }
                    }
                }
            }
        }
        for j in grad.indices { #expect(abs(again[j] - grad[j]) <= 1e-5 * max(1, abs(grad[j])), "parameter \(j)") }
    }
}

extension GradientTests {
    /// A copy of a `Network` is its own: two copies of one warmed-up network, used on two threads at once, give
    /// each the gradient a fresh network gives (their scratch buffers are not shared).
    @Test func copiesOfANetworkComputeIndependently() {
        let spec = try! ModelSpec(architecture: .mlp, inputFeatures: 6, hidden: [32, 16], classCount: 3)
        let params = spec.initialParameters(seed: 4)
        let batches = [Fixtures.blobs(count: 64, features: 6, classes: 3, seed: 1, spread: 1.5),
                       Fixtures.blobs(count: 64, features: 6, classes: 3, seed: 2, spread: 1.5)]
        let expected = batches.map { data -> [Float] in
            var fresh = Network(spec: spec)
            var g = [Float](repeating: 0, count: params.count)
            _ = loss(&fresh, params, data, &g)
            return g
        }
        var warmed = Network(spec: spec)
        var g = [Float](repeating: 0, count: params.count)
        _ = loss(&warmed, params, batches[0], &g)
        nonisolated(unsafe) let original = warmed  // the point of the test: copies used on two threads
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            var copy = original  // shares the warmed network's buffers until it runs
            var grad = [Float](repeating: 0, count: params.count)
            for _ in 0..<200 {
                _ = loss(&copy, params, batches[i], &grad)
                if grad != expected[i] { mismatches.withLock { $0 += 1 } }
            }
        }
        #expect(mismatches.withLock { $0 } == 0)
    }
}
