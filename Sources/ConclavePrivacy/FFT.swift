#if canImport(Glibc)
import Glibc
#endif

/// Linear convolution of non-negative sequences by an iterative radix-2 FFT (PLD composition). Results are
/// clamped at 0: round-off can make a vanishing probability slightly negative.
enum FFT {
    static func convolve(_ a: [Double], _ b: [Double]) -> [Double] {
        let outCount = a.count + b.count - 1
        if min(a.count, b.count) <= 32 { return direct(a, b) }
        var n = 1
        while n < outCount { n <<= 1 }
        var ar = a + [Double](repeating: 0, count: n - a.count), ai = [Double](repeating: 0, count: n)
        var br = b + [Double](repeating: 0, count: n - b.count), bi = [Double](repeating: 0, count: n)
        transform(&ar, &ai, inverse: false)
        transform(&br, &bi, inverse: false)
        for k in 0..<n {
            let re = ar[k] * br[k] - ai[k] * bi[k]
            ai[k] = ar[k] * bi[k] + ai[k] * br[k]
            ar[k] = re
        }
        transform(&ar, &ai, inverse: true)
        let scale = 1 / Double(n)
        return (0..<outCount).map { max(0, ar[$0] * scale) }
    }

    static func direct(_ a: [Double], _ b: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: a.count + b.count - 1)
        for (i, x) in a.enumerated() where x != 0 {
            for (j, y) in b.enumerated() { out[i + j] += x * y }
        }
        return out
    }

    static func transform(_ re: inout [Double], _ im: inout [Double], inverse: Bool) {
        let n = re.count
        var j = 0
        for i in 1..<n {
            var bit = n >> 1
            while j & bit != 0 { j ^= bit; bit >>= 1 }
            j |= bit
            if i < j { re.swapAt(i, j); im.swapAt(i, j) }
        }
        var length = 2
        while length <= n {
            let angle = (inverse ? 2 : -2) * Double.pi / Double(length)
            let half = length / 2
            // Twiddles computed directly per index (not by repeated multiplication) to keep round-off flat.
            let wr = (0..<half).map { cos(angle * Double($0)) }, wi = (0..<half).map { sin(angle * Double($0)) }
            re.withUnsafeMutableBufferPointer { r in
                im.withUnsafeMutableBufferPointer { m in
                    var start = 0
                    while start < n {
                        for k in 0..<half {
                            let u = start + k, v = u + half
                            let tr = r[v] * wr[k] - m[v] * wi[k], ti = r[v] * wi[k] + m[v] * wr[k]
                            r[v] = r[u] - tr; m[v] = m[u] - ti
                            r[u] += tr; m[u] += ti
                        }
                        start += length
                    }
                }
            }
            length <<= 1
        }
    }
}
