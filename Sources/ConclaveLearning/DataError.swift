/// A problem with a data file or its contents, naming where it is so the operator can fix it.
/// The product of dimension sizes, or nil if one is negative or the product overflows: file headers are
/// untrusted, and a forged size must be an error, never a trap.
func checkedProduct(_ sizes: [Int]) -> Int? {
    var product = 1
    for size in sizes {
        guard size >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: size)
        if overflow { return nil }
        product = p
    }
    return product
}

public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
