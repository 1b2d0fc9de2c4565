import CGaussian

/// Continuous Gaussian noise fast enough for DP-SGD's every step (10⁵ coordinates), hardened against
/// floating-point attacks by the construction of Holohan & Braghin ("Secure Random Sampling in Differential
/// Privacy", ESORICS 2021), the one Opacus uses in its secure mode: each coordinate is the sum of two
/// independent N(0, σ²/2) draws. Mironov's attack (CCS 2012) inverts a single textbook draw to the uniform
/// behind it; a sum has exponentially many preimages, so the released low-order bits no longer pin down the
/// input. Draws are Box–Muller pairs in float from two 32-bit words of `NoiseRandom` (AES-CTR under a key from
/// libsodium) — as PyTorch's vectorised normal draws the float32 variates Opacus's secure mode sums — computed
/// by `NoiseKernel` sixteen at a time. The radius word gives u ≥ 2⁻³², so one draw reaches 6.66σ (the sum,
/// 9.4σ). The exact integer samplers in `DiscreteSamplers` remain the choice where a release happens once per
/// round (`GaussianNoise`): at ≈ 2.75 µs a draw they would cost DP-SGD ~0.3 s per step of a 10⁵-parameter model.
public struct SummedGaussianNoise: Sendable {
    public let standardDeviation: Double
    /// The draws summed per coordinate.
    public static let parts = 2
    let kernel: NoiseKernel

    public init(standardDeviation: Double) {
        self.init(standardDeviation: standardDeviation, kernel: .best)
    }

    /// With a chosen kernel: the tests run every one this CPU has.
    init(standardDeviation: Double, kernel: NoiseKernel) {
        precondition(standardDeviation > 0 && standardDeviation.isFinite, "noise needs a positive, finite standard deviation")
        self.standardDeviation = standardDeviation
        self.kernel = kernel
    }

    /// Adds independent noise to every value.
    public func add(to values: inout [Float], using rng: inout NoiseRandom) {
        let n = values.count
        values.withUnsafeMutableBufferPointer { v in
            guard let p = v.baseAddress else { return }
            noised(p, count: n, scaledBy: 1, into: p, decay: 0, using: &rng)
        }
    }

    /// dst[i] ← decay·dst[i] + R·factor with R = src[i] + noise rounded to Float once — the release (one FMA,
    /// with the noise's scale rounded up to float, or in double where the CPU has no FMA). Scaling and folding
    /// only post-process R: with decay μ and dst the momentum buffer this is SGD's v ← μv + g̃ in the same pass.
    /// `dst` may be `src` (decay 0: noise added in place). Keystream lands in blocks of 8,192 coordinates' words
    /// (64 KiB, in L2) straight in a scratch buffer.
    public func noised(_ src: UnsafePointer<Float>, count: Int, scaledBy factor: Double,
                       into dst: UnsafeMutablePointer<Float>, decay: Float, using rng: inout NoiseRandom) {
        guard count > 0 else { return }
        let scale = standardDeviation / Double(Self.parts).squareRoot(), block = 8192
        let words = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: conclave_gaussian_words(block) / 2)
        defer { words.deallocate() }
        let h = UnsafeRawPointer(words.baseAddress!).assumingMemoryBound(to: UInt32.self)
        var start = 0
        while start < count {
            let m = min(block, count - start)
            rng.fill(UnsafeMutableBufferPointer(start: words.baseAddress!, count: conclave_gaussian_words(m) / 2))
            conclave_gaussian_noised(kernel.c, src + start, m, h, scale, factor, dst + start, decay)
            start += m
        }
    }
}

/// The noise loop's builds (CGaussian): one implementation compiled for AVX-512, AVX2 + FMA and the baseline,
/// the widest the CPU and its OS run chosen once at start. All three draw the same construction from the same
/// words; they differ in the last bits only through FMA contraction.
public enum NoiseKernel: String, Sendable, CaseIterable {
    case portable, avx2, avx512

    /// The widest kernel this machine runs.
    public static let best: NoiseKernel = switch conclave_gaussian_best() {
    case conclave_gaussian_avx512: .avx512
    case conclave_gaussian_avx2: .avx2
    default: .portable
    }

    /// The kernels this machine runs, narrowest first.
    public static var available: [NoiseKernel] { allCases.filter { $0.width <= best.width } }

    var width: Int { switch self { case .portable: 0; case .avx2: 1; case .avx512: 2 } }

    var c: conclave_gaussian_kernel {
        switch self {
        case .portable: conclave_gaussian_portable
        case .avx2: conclave_gaussian_avx2
        case .avx512: conclave_gaussian_avx512
        }
    }
}
