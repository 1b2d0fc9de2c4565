public import ConclaveFederation
import ConclaveCrypto
public import ConclaveLearning
import Foundation

/// Model checkpoints as safetensors files named by the SHA-256 of their bytes, so a file can be checked
/// against the database row that records it, and writing the same checkpoint twice is harmless.
public struct CheckpointStore: Sendable {
    public let directory: String

    public init(directory: String) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StorageError("cannot create checkpoint directory \(directory): \(error.localizedDescription)")
        }
        self.directory = directory
    }

    public struct Checkpoint: Sendable {
        public var weights: [Float]
        public var serverOptimizer: ServerOptimizer
    }

    public func path(for sha256: String) -> String { "\(directory)/\(sha256).safetensors" }

    /// Writes the model (and the server optimiser's moments) and returns the file's SHA-256.
    public func save(model: ModelSpec, weights: [Float], serverOptimizer: ServerOptimizer, runID: String,
                     round: Int) throws(StorageError) -> String {
        var tensors = model.tensors(from: weights)
        if !serverOptimizer.m.isEmpty {
            tensors.append(.init(name: "server_optimizer.m", shape: [serverOptimizer.m.count], values: serverOptimizer.m))
            tensors.append(.init(name: "server_optimizer.v", shape: [serverOptimizer.v.count], values: serverOptimizer.v))
        }
        let data: Data
        do {
            data = try Safetensors.encode(tensors, metadata: ["run": runID, "round": String(round),
                                                              "model": model.summary, "format": "conclave-v1"])
        } catch {
            throw StorageError("cannot encode checkpoint for run \(runID) round \(round): \(error)")
        }
        let sha = data.withUnsafeBytes { SHA256.hex($0) }
        let target = path(for: sha)
        if FileManager.default.fileExists(atPath: target) { return sha }
        try DurableFile.write(data, to: target, temp: "\(directory)/\(Self.tempPrefix)\(sha)")
        return sha
    }

    /// Fails, naming the directory, unless a file can be created in it now.
    public func checkWritable() throws(StorageError) {
        let probe = "\(directory)/\(Self.tempPrefix)probe"
        do {
            try DurableFile.write(Data("probe".utf8), to: probe, temp: probe + ".tmp")
            try? FileManager.default.removeItem(atPath: probe)
        } catch {
            throw StorageError("the checkpoint directory \(directory) is not writable: \(error.message)")
        }
    }

    /// Checkpoint files being written carry this prefix until they are renamed into place.
    public static let tempPrefix = ".tmp-"

    /// Deletes temp files and checkpoints that no committed round references (after a crash: a partial write,
    /// or the checkpoint of an attempt that never committed — in a central-DP run, a noised model that was
    /// never charged). Returns the paths removed, for the log.
    public func removeOrphans(keeping referenced: Set<String>) throws(StorageError) -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw StorageError("cannot list checkpoint directory \(directory): \(error.localizedDescription)")
        }
        var removed = [String]()
        for name in names.sorted() {
            let isTemp = name.hasPrefix(Self.tempPrefix)
            let isCheckpoint = name.hasSuffix(".safetensors") && name.count == 64 + ".safetensors".count
            let isPending = name.hasSuffix(Self.pendingSuffix)
            guard isTemp || ((isCheckpoint || isPending) && !referenced.contains(String(name.prefix(64)))) else { continue }
            let file = "\(directory)/\(name)"
            do { try FileManager.default.removeItem(atPath: file) } catch {
                throw StorageError("cannot remove orphan checkpoint file \(file): \(error.localizedDescription)")
            }
            removed.append(file)
        }
        return removed
    }

    /// Loads and verifies a checkpoint: its bytes must hash to its name.
    public func load(sha256: String, model: ModelSpec, server: ServerOptimizerConfig) throws(StorageError) -> Checkpoint {
        let file = path(for: sha256)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw StorageError("checkpoint \(file) is missing")
        }
        let actual = data.withUnsafeBytes { SHA256.hex($0) }
        guard actual == sha256 else {
            throw StorageError("checkpoint \(file) is corrupt: its SHA-256 is \(actual)")
        }
        do {
            let (tensors, _) = try Safetensors.decode(data, source: file)
            let weights = try model.parameters(from: tensors)
            let m = tensors.first { $0.name == "server_optimizer.m" }?.values
            let v = tensors.first { $0.name == "server_optimizer.v" }?.values
            return Checkpoint(weights: weights, serverOptimizer: ServerOptimizer(
                config: server, parameterCount: model.parameterCount, m: m, v: v))
        } catch {
            throw StorageError("checkpoint \(file): \(error.message)")
        }
    }
}

public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The request conflicts with what is stored (not a fault of the disk): the caller may report it as such.
    public var isConflict = false
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func conflict(_ message: String) -> StorageError {
        var error = StorageError(message)
        error.isConflict = true
        return error
    }
}
