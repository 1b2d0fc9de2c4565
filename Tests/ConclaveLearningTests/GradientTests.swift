import ConclaveLearning
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
