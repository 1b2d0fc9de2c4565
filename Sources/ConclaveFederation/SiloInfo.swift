/// What a silo agent says about itself when it asks for work.
public struct SiloInfo: Sendable, Equatable {
    public var id: String
    public var examples: UInt64
    public var features: Int
    public var classes: Int
    public var dataset: String
    /// The silo's long-term Ed25519 public key; it signs the silo's secure-aggregation messages.
    public var identityKey: [UInt8]

    public init(id: String, examples: UInt64, features: Int, classes: Int, dataset: String = "",
                identityKey: [UInt8] = []) {
        self.id = id
        self.examples = examples
        self.features = features
        self.classes = classes
        self.dataset = dataset
        self.identityKey = identityKey
    }
}
