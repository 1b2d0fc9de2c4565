/// A problem with a data file or its contents, naming where it is so the operator can fix it.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
