/// An error a silo operator or ML engineer can act on. `code` maps onto a gRPC status at the edge.
public struct FederationError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// The request itself is malformed (wrong length, bad value).
        case invalidArgument
        /// The request is well-formed but does not fit the current state (closed round, wrong shape).
        case failedPrecondition
        /// The silo is not a member of this federation.
        case permissionDenied
        /// A run, round or checkpoint does not exist.
        case notFound
        /// The same thing was sent twice.
        case alreadyExists
        /// The silo already holds the one stream it may hold, or a limit on what is kept was reached.
        case resourceExhausted
        /// The coordinator cannot do it now (its storage is failing); retrying later may work.
        case unavailable
        /// The peer was too slow: a stream went quiet for longer than its read timeout.
        case deadlineExceeded
        /// The state moved between two steps of a request (a drafted ledger entry no longer continues the ledger).
        case aborted
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
