/// A certificate, key, CSR or bundle problem, with what to do about it.
public struct IdentityError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
