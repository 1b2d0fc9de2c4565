#if canImport(Glibc)
import Glibc
#endif

/// Privacy loss distributions of the Poisson-subsampled Gaussian mechanism, as in Google's dp-accounting:
/// each direction of adjacency (a record removed, a record added) is discretised pessimistically by "connect
/// the dots" (Doroshenko et al., PETS 2022) — the discrete PLD's hockey-stick curve interpolates the exact
/// curve at grid points and lies above it everywhere — composed T times by FFT with pessimistic tail
/// truncation (mass cut from the top becomes infinite loss, from the bottom moves up a bin), and read off as
/// ε for δ; the answer is the worse of the two directions.
public enum PLD {
    enum Direction { case remove, add }

    /// Mass below this, cut from each tail after every composition.
    static let tailMass = 1e-15
    /// Bins the T-fold composition is sized to; the grid interval is `finestInterval` or coarser to stay near
    /// this (dp-accounting's default grid is 10⁻⁴).
    static let targetBins = 1 << 15
    static let finestInterval = 1e-4
    /// Longest a composed distribution may grow before its grid is coarsened.
    static let maxBins = 1 << 18

    public static func epsilon(noiseMultiplier sigma: Double, samplingRate q: Double, steps: Int,
                               delta: Double) throws(PrivacyError) -> Double {
        guard sigma > 0 else { return .infinity }
        var worst = 0.0
        for direction in [Direction.remove, .add] {
            // Per step, losses whose tails hold under 10⁻¹⁵/T are cut (pessimistically: the top to +∞, the
            // bottom up to the lowest point), so T steps lose at most 10⁻¹⁵ of δ.
            let range = Distribution.lossRange(direction, q: q, sigma: sigma, tail: tailMass / Double(steps))
            // A dry run on a coarse grid measures how wide the T-fold composition gets (its tails are long when q
            // is small: a few steps may hit the rare, costly outcome); the real grid is sized to that, so
            // composing never needs to coarsen midway.
            let span = range.upperBound - range.lowerBound
            // Each cut may move at most 10⁻⁷·δ, shared over the ~2·log₂T compositions: the tails beyond are
            // where long compositions grow wide. (10⁻³·δ already shifted ε by 2 % at T = 10⁴: mass pushed up
            // from the bottom keeps compounding.)
            let cut = delta * 1e-7 / Double(2 * (Int.bitWidth - steps.leadingZeroBitCount) + 2)
            let probe = Distribution.connectTheDots(direction, q: q, sigma: sigma, interval: max(span / 256, 1e-3),
                                                    range: range).composed(steps, cut: cut)
            let width = Double(probe.probs.count) * probe.interval
            let interval = max(finestInterval, width / Double(targetBins), span / 8192)
            let single = Distribution.connectTheDots(direction, q: q, sigma: sigma, interval: interval, range: range)
            worst = max(worst, single.composed(steps, cut: cut).epsilon(delta: delta))
        }
        return worst
    }

    /// A distribution of privacy loss on the grid l = (offset + i)·interval, plus mass at +∞.
    struct Distribution {
        var offset: Int
        var probs: [Double]
        var infinity: Double
        let interval: Double

        /// The exact hockey-stick curve δ(ε) of one step.
        static func hockeyStick(_ direction: Direction, q: Double, sigma: Double, epsilon e: Double) -> Double {
            // Both tails straight from erfc: 1 − Φ would cancel catastrophically where the curve is tiny.
            func upperTail(_ z: Double) -> Double { 0.5 * erfc(z / 2.0.squareRoot()) }  // P(N(0,1) > z)
            func lowerTail(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }  // P(N(0,1) < z)
            switch direction {
            case .remove:
                // upper = (1−q)N(0,σ²) + qN(1,σ²), lower = N(0,σ²); loss log(1−q + q·e^{(2x−1)/2σ²}) grows with x.
                if q < 1, e <= log1p(-q) { return -expm1(e) }
                let x = sigma * sigma * log((expm1(e) + q) / q) + 0.5
                let value = q * upperTail((x - 1) / sigma) - (expm1(e) + q) * upperTail(x / sigma)
                return min(1, max(0, value))
            case .add:
                // upper = N(0,σ²), lower = the mixture; loss −log(1−q + q·e^{(2x−1)/2σ²}) falls as x grows.
                if q < 1, e >= -log1p(-q) { return 0 }
                let x = sigma * sigma * log((expm1(-e) + q) / q) + 0.5
                let below = lowerTail(x / sigma), belowShifted = lowerTail((x - 1) / sigma)
                let value = below - exp(e) * ((1 - q) * below + q * belowShifted)
                return min(1, max(0, value))
            }
        }

        static func loss(_ direction: Direction, q: Double, sigma: Double, at x: Double) -> Double {
            let y = (2 * x - 1) / (2 * sigma * sigma)
            // q = 1 is the plain Gaussian: log1p(expm1(y)) would lose y to −∞ far in the lower tail.
            let l = q == 1 ? y : y > 700 ? y + log(q) + log1p((1 - q) * exp(-y) / q) : log1p(q * expm1(y))
            return direction == .remove ? l : -l
        }

        /// P(loss ≤ ε) under the upper distribution of one step.
        static func lossCDF(_ direction: Direction, q: Double, sigma: Double, epsilon e: Double) -> Double {
            func upperTail(_ z: Double) -> Double { 0.5 * erfc(z / 2.0.squareRoot()) }
            func lowerTail(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
            switch direction {
            case .remove:
                if q < 1, e <= log1p(-q) { return 0 }
                let x = sigma * sigma * log((expm1(e) + q) / q) + 0.5
                return (1 - q) * lowerTail(x / sigma) + q * lowerTail((x - 1) / sigma)
            case .add:
                if q < 1, e >= -log1p(-q) { return 1 }
                return upperTail((sigma * sigma * log((expm1(-e) + q) / q) + 0.5) / sigma)
            }
        }

        /// The losses worth a grid: below, the upper distribution holds < `tail`; above, δ(ε) < `tail`.
        static func lossRange(_ direction: Direction, q: Double, sigma: Double, tail: Double) -> ClosedRange<Double> {
            // Gaussian tails beyond 10σ hold < 10⁻²³; where a loss there overflows (tiny σ), look less far out.
            var ends = [Double]()
            for c in [10.0, 8, 6, 4] {
                ends = [loss(direction, q: q, sigma: sigma, at: -c * sigma), loss(direction, q: q, sigma: sigma, at: 1 + c * sigma)]
                if ends.allSatisfy(\.isFinite) { break }
            }
            func bisect(_ lo: Double, _ hi: Double, _ below: (Double) -> Bool) -> Double {
                var (lo, hi) = (lo, hi)  // below(lo) holds, below(hi) does not
                for _ in 0..<80 where hi - lo > 1e-9 {
                    let mid = (lo + hi) / 2
                    if below(mid) { lo = mid } else { hi = mid }
                }
                return lo
            }
            let low = ends.min()!, high = ends.max()!
            let top = bisect(low, high) { hockeyStick(direction, q: q, sigma: sigma, epsilon: $0) > tail }
            let bottom = bisect(low, high) { lossCDF(direction, q: q, sigma: sigma, epsilon: $0) < tail }
            return bottom < top ? bottom...top : low...high
        }

        /// The connect-the-dots discretisation of one step on the grid of `interval` over `range`.
        static func connectTheDots(_ direction: Direction, q: Double, sigma: Double, interval: Double,
                                   range: ClosedRange<Double>) -> Distribution {
            var low = Int((range.lowerBound / interval).rounded(.down)), high = Int((range.upperBound / interval).rounded(.up))
            if high - low < 2 { low -= 1; high += 1 }
            let deltas = (low...high).map { hockeyStick(direction, q: q, sigma: sigma, epsilon: Double($0) * interval) }
            let m = deltas.count
            let em1 = expm1(interval), e = exp(interval)
            var probs = [Double](repeating: 0, count: m)
            // p_k = e^{ε_k}·(slope right − slope left) of δ as a function of e^ε; anchored at (0, 1) on the left
            // and flat (infinite mass δ(ε_max)) on the right.
            probs[0] = (deltas[1] - deltas[0]) / em1 + (1 - deltas[0])
            for k in 1..<(m - 1) {
                probs[k] = ((deltas[k + 1] - deltas[k]) - e * (deltas[k] - deltas[k - 1])) / em1
            }
            probs[m - 1] = -(deltas[m - 1] - deltas[m - 2]) * e / em1
            return Distribution(offset: low, probs: probs.map { max(0, $0) }, infinity: deltas[m - 1], interval: interval)
        }

        func convolved(with other: Distribution, cut: Double) -> Distribution {
            // Both on one grid: the finer one is coarsened (pessimistically) to the other's interval.
            var a = self, b = other
            while a.interval < b.interval * 0.999 { a = a.coarsened() }
            while b.interval < a.interval * 0.999 { b = b.coarsened() }
            var out = Distribution(offset: a.offset + b.offset, probs: FFT.convolve(a.probs, b.probs),
                                   infinity: 1 - (1 - a.infinity) * (1 - b.infinity), interval: a.interval)
            out.truncate(cut)
            while out.probs.count > PLD.maxBins { out = out.coarsened() }
            return out
        }

        /// The same distribution on a grid twice as coarse, each loss rounded up to it (pessimistic: a
        /// larger loss never lowers δ). Keeps long compositions within `maxBins`.
        func coarsened() -> Distribution {
            let first = Int((Double(offset) / 2).rounded(.up))
            let last = Int((Double(offset + probs.count - 1) / 2).rounded(.up))
            var merged = [Double](repeating: 0, count: last - first + 1)
            for (i, p) in probs.enumerated() {
                merged[Int((Double(offset + i) / 2).rounded(.up)) - first] += p
            }
            return Distribution(offset: first, probs: merged, infinity: infinity, interval: interval * 2)
        }

        /// Cuts up to `budget` from each tail: the top to +∞, the bottom into the lowest kept bin.
        mutating func truncate(_ budget: Double) {
            var top = probs.count - 1, cut = 0.0
            while top > 0, cut + probs[top] < budget { cut += probs[top]; top -= 1 }
            infinity += cut
            var bottom = 0, moved = 0.0
            while bottom < top, moved + probs[bottom] < budget { moved += probs[bottom]; bottom += 1 }
            probs = Array(probs[bottom...top])
            probs[0] += moved
            offset += bottom
        }

        func composed(_ times: Int, cut: Double) -> Distribution {
            var result: Distribution?
            var base = self
            var t = times
            while t > 0 {
                if t & 1 == 1 { result = result.map { $0.convolved(with: base, cut: cut) } ?? base }
                t >>= 1
                if t > 0 { base = base.convolved(with: base, cut: cut) }
            }
            return result!
        }

        /// The smallest ε ≥ 0 with δ(ε) = ∞-mass + Σ_{l > ε} p_l (1 − e^{ε−l}) ≤ δ.
        func epsilon(delta: Double) -> Double {
            guard infinity <= delta else { return .infinity }
            var mass = 0.0, logWeighted = -Double.infinity  // over losses above the current grid point
            for k in stride(from: probs.count - 1, through: 0, by: -1) {
                let l = Double(offset + k) * interval
                let atL = infinity + mass - exp(l + logWeighted)
                if atL > delta {
                    // δ(ε) = ∞-mass + mass − e^ε·weighted on [l, next grid point): solve for δ.
                    return max(0, log(infinity + mass - delta) - logWeighted)
                }
                if probs[k] > 0 {
                    mass += probs[k]
                    logWeighted = LogMath.add(logWeighted, log(probs[k]) - l)
                }
            }
            guard infinity + mass > delta else { return 0 }
            return max(0, log(infinity + mass - delta) - logWeighted)
        }
    }
}
