/// The architecture of a model: dense layers with ReLU between them, softmax cross-entropy on top.
/// Logistic regression is the special case with no hidden layer.
public struct ModelSpec: Sendable, Equatable, Codable {
    public enum Architecture: String, Sendable, Codable, CaseIterable {
        case mlp
        case logreg
    }

    public var architecture: Architecture
    public var inputFeatures: Int
    public var hidden: [Int]
    public var classCount: Int

    public init(architecture: Architecture, inputFeatures: Int, hidden: [Int], classCount: Int) throws(DataError) {
        guard inputFeatures > 0 else { throw DataError("model input_features must be positive, got \(inputFeatures)") }
        guard classCount >= 2 else { throw DataError("model num_classes must be at least 2, got \(classCount)") }
        switch architecture {
        case .logreg:
            guard hidden.isEmpty else { throw DataError("a logreg model has no hidden layers; remove 'hidden'") }
        case .mlp:
            guard !hidden.isEmpty else { throw DataError("an mlp model needs at least one hidden layer in 'hidden'") }
            if let bad = hidden.first(where: { $0 <= 0 }) {
                throw DataError("hidden layer widths must be positive, got \(bad)")
            }
        }
        self.architecture = architecture
        self.inputFeatures = inputFeatures
        self.hidden = hidden
        self.classCount = classCount
    }

    /// Layer widths from input to output, e.g. [784, 128, 10].
    public var widths: [Int] { [inputFeatures] + hidden + [classCount] }

    /// (inputs, outputs) per dense layer.
    public var layers: [(inputs: Int, outputs: Int)] {
        let w = widths
        return (0..<(w.count - 1)).map { (w[$0], w[$0 + 1]) }
    }

    /// Total number of parameters: per layer a weight matrix (outputs × inputs) then a bias (outputs).
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.outputs * $1.inputs + $1.outputs } }

    /// Offsets of each layer's weight and bias in the flat parameter vector.
    public var offsets: [(weight: Int, bias: Int)] {
        var out = [(Int, Int)]()
        var o = 0
        for l in layers {
            out.append((o, o + l.outputs * l.inputs))
            o += l.outputs * l.inputs + l.outputs
        }
        return out
    }

    /// "mlp 784-128-10"
    public var summary: String { "\(architecture.rawValue) " + widths.map(String.init).joined(separator: "-") }

    /// PyTorch's default `nn.Linear` initialisation: weights and biases uniform in ±1/√inputs.
    public func initialParameters(seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var params = [Float](repeating: 0, count: parameterCount)
        for (l, o) in zip(layers, offsets) {
            let bound = 1 / Double(l.inputs).squareRoot()
            for i in o.weight..<(o.bias + l.outputs) {
                params[i] = Float((rng.nextUnitOpen() * 2 - 1) * bound)
            }
        }
        return params
    }
}
