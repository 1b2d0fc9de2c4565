/// Arithmetic modulo the Mersenne prime p = 2⁶¹ − 1, the field Shamir sharing works in.
enum Field61 {
    static let p: UInt64 = (1 << 61) - 1

    @inline(__always) static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let s = a + b  // < 2⁶² : no overflow
        return s >= p ? s - p : s
    }

    @inline(__always) static func sub(_ a: UInt64, _ b: UInt64) -> UInt64 { a >= b ? a - b : a + p - b }

    @inline(__always) static func mul(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (high, low) = a.multipliedFullWidth(by: b)
        // x = high·2⁶⁴ + low; 2⁶¹ ≡ 1, so x ≡ (low mod 2⁶¹) + (low ≫ 61) + high·2³.
        let folded = (low & p) + (low >> 61) + (high << 3)
        var r = (folded & p) + (folded >> 61)
        if r >= p { r -= p }
        return r
    }

    static func pow(_ base: UInt64, _ exponent: UInt64) -> UInt64 {
        var result: UInt64 = 1, b = base, e = exponent
        while e > 0 {
            if e & 1 == 1 { result = mul(result, b) }
            b = mul(b, b)
            e >>= 1
        }
        return result
    }

    /// a⁻¹ by Fermat's little theorem; a must be non-zero.
    static func inverse(_ a: UInt64) -> UInt64 { pow(a, p - 2) }

    /// Uniform in [0, p) by rejection.
    static func random(using rng: inout some RandomNumberGenerator) -> UInt64 {
        while true {
            let x = rng.next() & p
            if x < p { return x }
        }
    }
}
