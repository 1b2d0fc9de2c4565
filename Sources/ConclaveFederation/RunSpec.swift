public import ConclaveLearning

/// Everything an ML engineer fixes about a training run (the `run.toml` file).
public struct RunSpec: Sendable, Equatable, Codable {
    public var name: String
    public var model: ModelSpec
    public var rounds: Int
    public var training: TrainingConfig
    /// Fewest silo updates a round needs to close; fewer at the deadline abandons and retries the round.
    public var minSilos: Int
    /// How many live silos each round selects; nil takes every live silo.
    public var silosPerRound: Int?
    /// Seconds a round waits for its selected silos before closing with whoever reported.
    public var roundDeadlineSeconds: Double
    public var server: ServerOptimizerConfig
    /// Seeds the initial weights, silo selection and (mixed with each silo's id) local shuffling.
    public var seed: UInt64
    /// Held-out data the coordinator scores the global model on after every round.
    public var evaluation: DataSource?
    /// Secure aggregation of the silos' updates; nil sends updates in the clear (trusted-coordinator setups
    /// and tests only).
    public var secureAggregation: SecureAggregationConfig?
    /// Differential privacy of the released models; nil for none.
    public var privacy: PrivacyConfig?

    public init(name: String, model: ModelSpec, rounds: Int, training: TrainingConfig, minSilos: Int,
                silosPerRound: Int? = nil, roundDeadlineSeconds: Double = 300,
                server: ServerOptimizerConfig = ServerOptimizerConfig(), seed: UInt64 = 1,
                evaluation: DataSource? = nil, secureAggregation: SecureAggregationConfig? = nil,
                privacy: PrivacyConfig? = nil) throws(FederationError) {
        guard rounds >= 1 else { throw FederationError(.invalidArgument, "rounds must be at least 1, got \(rounds)") }
        guard minSilos >= 1 else { throw FederationError(.invalidArgument, "min_silos must be at least 1, got \(minSilos)") }
        if let k = silosPerRound, k < minSilos {
            throw FederationError(.invalidArgument, "silos_per_round (\(k)) is below min_silos (\(minSilos))")
        }
        guard roundDeadlineSeconds > 0 else {
            throw FederationError(.invalidArgument, "round_deadline_seconds must be positive, got \(roundDeadlineSeconds)")
        }
        guard training.localEpochs >= 1, training.batchSize >= 1 else {
            throw FederationError(.invalidArgument, "local_epochs and batch_size must be at least 1")
        }
        guard training.learningRate > 0, training.learningRate.isFinite else {
            throw FederationError(.invalidArgument, "learning_rate must be positive, got \(training.learningRate)")
        }
        guard (0..<1).contains(training.momentum) else {
            throw FederationError(.invalidArgument, "momentum must be in [0, 1), got \(training.momentum)")
        }
        if secureAggregation != nil, minSilos < 2 {
            throw FederationError(.invalidArgument,
                "secure aggregation needs min_silos of at least 2 (one silo's sum is its own update), got \(minSilos)")
        }
        var privacy = privacy
        if let p = privacy {
            switch p.mode {
            case .central:
                guard secureAggregation != nil else {
                    throw FederationError(.invalidArgument,
                        "privacy.mode = \"central\" clips updates through secure aggregation: enable [secure_aggregation]")
                }
                try privacy!.calibrateCentral(rounds: rounds, clipNorm: secureAggregation!.clipNorm,
                                              dimension: model.parameterCount)
                if let sigmaB = privacy!.adaptiveClipping?.countNoiseStddev, let z = privacy!.noiseMultiplier,
                   AdaptiveClipping.updateMultiplier(total: z, countStddev: sigmaB) == nil {
                    throw FederationError(.invalidArgument,
                        "privacy.count_noise_stddev (\(sigmaB)) must exceed the noise multiplier (\(z)): the count's noise is paid out of it")
                }
            case .record:
                break  // every silo clips, noises and accounts for its own records
            case .distributed:
                guard secureAggregation != nil else {
                    throw FederationError(.invalidArgument,
                        "privacy.mode = \"distributed\" adds its noise under secure aggregation: enable [secure_aggregation]")
                }
                try privacy!.calibrateDistributed(rounds: rounds)
            }
        }
        self.name = name
        self.model = model
        self.rounds = rounds
        self.training = training
        self.minSilos = minSilos
        self.silosPerRound = silosPerRound
        self.roundDeadlineSeconds = roundDeadlineSeconds
        self.server = server
        self.seed = seed
        self.evaluation = evaluation
        self.secureAggregation = secureAggregation
        self.privacy = privacy
    }
}

/// Where a dataset lives on disk: a pair of IDX files (MNIST style) or a CSV file.
public enum DataSource: Sendable, Equatable, Codable {
    case idx(images: String, labels: String)
    case csv(path: String, labelColumn: String)

    public func load(classCount: Int? = nil) throws(DataError) -> Dataset {
        switch self {
        case .idx(let images, let labels):
            try IDX.dataset(imagesPath: images, labelsPath: labels, classCount: classCount ?? 10)
        case .csv(let path, let labelColumn):
            try CSVReader.read(path: path, labelColumn: labelColumn, classCount: classCount)
        }
    }

    public var description: String {
        switch self {
        case .idx(let images, let labels): "idx images=\(images) labels=\(labels)"
        case .csv(let path, let labelColumn): "csv \(path) (label column '\(labelColumn)')"
        }
    }
}
