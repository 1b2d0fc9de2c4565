import ConclaveFederation
import Testing

@Suite struct ServerOptimizerTests {
    @Test func fedAvgAddsTheScaledMeanUpdate() {
        var opt = ServerOptimizer(config: ServerOptimizerConfig(kind: .fedavg, learningRate: 0.5), parameterCount: 2)
        var w: [Float] = [1, 1]
        opt.apply(delta: [2, -4], to: &w)
        #expect(w == [2, -1])
    }

    @Test func fedAdamAndFedYogiFollowReddiEtAl() {
        // One step from m = 0, v = τ²: m = (1−β1)Δ, v_adam = β2τ² + (1−β2)Δ², v_yogi = τ² + (1−β2)Δ² (since τ² < Δ²).
        let config = { (kind: ServerOptimizerConfig.Kind) in
            ServerOptimizerConfig(kind: kind, learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.01)
        }
        let delta: Float = 0.5
        let m = 0.1 * delta
        let vAdam = 0.99 * 0.0001 + 0.01 * delta * delta
        let vYogi = 0.0001 + 0.01 * delta * delta
        for (kind, v) in [(ServerOptimizerConfig.Kind.fedadam, vAdam), (.fedyogi, vYogi)] {
            var opt = ServerOptimizer(config: config(kind), parameterCount: 1)
            var w: [Float] = [0]
            opt.apply(delta: [delta], to: &w)
            let expected = 0.1 * m / (v.squareRoot() + 0.01)
            #expect(abs(w[0] - expected) < 1e-6, "\(kind)")
            #expect(abs(opt.v[0] - v) < 1e-7)
        }
    }
}
