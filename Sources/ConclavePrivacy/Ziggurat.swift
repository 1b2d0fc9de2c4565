#if canImport(Glibc)
import Glibc
#endif

/// Standard normal variates by Marsaglia & Tsang's ziggurat (J. Stat. Softw. 2000) with 256 layers: one random
/// word per draw 99 % of the time, so a draw costs a table lookup, a multiply and a compare instead of a log and
/// a cosine. Two forms: `normal`, the 64-bit one rand_distr uses (8 bits pick the layer, the top 52 bits the
/// position), and `draw(word:)` on a 32-bit word (8 bits layer, 1 sign, 23 position), the DP-SGD noise loop's.
enum Ziggurat {
    /// The base strip's right edge R and each layer's area V (256 layers).
    static let r = 3.654152885361008796
    static let v = 0.00492867323399

    /// x[0] = V/f(R) (the base strip's width as a rectangle), x[1] = R, …, x[256] = 0; f[i] = exp(−x[i]²/2).
    static let tables: (x: [Double], f: [Double]) = {
        var x = [Double](repeating: 0, count: 257)
        x[0] = v / exp(-r * r / 2)
        x[1] = r
        for i in 1..<255 {
            let next = exp(-x[i] * x[i] / 2) + v / x[i]
            x[i + 1] = (-2 * log(min(next, 1))).squareRoot()
        }
        x[256] = 0
        return (x, x.map { exp(-$0 * $0 / 2) })
    }()

    @inline(__always)
    static func normal(using rng: inout some RandomNumberGenerator, x: UnsafePointer<Double>, f: UnsafePointer<Double>) -> Double {
        while true {
            let bits = rng.next()
            let i = Int(truncatingIfNeeded: bits & 0xff)
            // u uniform in [−1, 1) from the top 52 bits.
            let u = Double(bitPattern: (bits >> 12) | 0x4000_0000_0000_0000) - 3
            let candidate = u * x[i]
            if abs(candidate) < x[i + 1] { return candidate }
            if i == 0 { return tail(negative: u < 0, using: &rng) }
            let y = f[i + 1] + (f[i] - f[i + 1]) * unit(&rng)
            if y < exp(-candidate * candidate / 2) { return candidate }
        }
    }

    /// Tables for draws from one 32-bit word each (`draw(word:)`): bits 0–7 pick the layer, bit 8 the sign,
    /// bits 9–31 the position m. `scale[layer | sign<<8]` = ±x[layer]·2⁻²³; `bound[layer]` = ⌊x[layer+1]/x[layer]·2²³⌋,
    /// so the rectangle test is one integer compare and the value one multiply.
    static let wordTables: (scale: [Double], bound: [UInt32]) = {
        let x = tables.x
        var scale = [Double](repeating: 0, count: 512), bound = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            scale[i] = x[i] * 0x1p-23
            scale[i + 256] = -x[i] * 0x1p-23
            bound[i] = UInt32((x[i + 1] / x[i] * 0x1p23).rounded(.down))
        }
        return (scale, bound)
    }()

    /// A standard normal draw from one 32-bit word — float32 precision per draw (23-bit positions in 256 layers,
    /// like the float32 draws Opacus's secure mode sums) at half the keystream of `normal`. ≈ 99 % of words end
    /// at the rectangle test; the rest go on with `rng`.
    @inline(__always)
    static func draw(word h: UInt32, using rng: inout some RandomNumberGenerator, scale: UnsafePointer<Double>,
                     bound: UnsafePointer<UInt32>, x: UnsafePointer<Double>, f: UnsafePointer<Double>) -> Double {
        let m = h >> 9
        if m < bound[Int(h & 0xff)] { return Double(m) * scale[Int(h & 0x1ff)] }
        return finish(word: h, using: &rng, x: x, f: f)
    }

    /// The rest of a 32-bit draw that failed the integer rectangle test: the exact test (the bound was rounded
    /// down), then the wedge or the tail beyond R, else a fresh draw. Each try is independent of the one
    /// rejected, so the result is a ziggurat normal like `normal`'s.
    @inline(never)
    static func finish(word h: UInt32, using rng: inout some RandomNumberGenerator,
                       x: UnsafePointer<Double>, f: UnsafePointer<Double>) -> Double {
        let i = Int(h & 0xff), negative = h & 0x100 != 0
        let candidate = Double(h >> 9) * 0x1p-23 * x[i]
        if candidate < x[i + 1] { return negative ? -candidate : candidate }
        if i == 0 { return tail(negative: negative, using: &rng) }
        let y = f[i + 1] + (f[i] - f[i + 1]) * unit(&rng)
        if y < exp(-candidate * candidate / 2) { return negative ? -candidate : candidate }
        return normal(using: &rng, x: x, f: f)
    }

    /// Beyond R (Marsaglia 1964).
    static func tail(negative: Bool, using rng: inout some RandomNumberGenerator) -> Double {
        while true {
            let a = -log(unitOpen(&rng)) / r
            let b = -log(unitOpen(&rng))
            if 2 * b >= a * a { return negative ? -(r + a) : r + a }
        }
    }

    @inline(__always) static func unit(_ rng: inout some RandomNumberGenerator) -> Double {
        Double(rng.next() >> 11) * 0x1p-53
    }

    @inline(__always) static func unitOpen(_ rng: inout some RandomNumberGenerator) -> Double {
        Double((rng.next() >> 11) + 1) * 0x1p-53
    }
}
