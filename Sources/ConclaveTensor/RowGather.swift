import CPrefetch

/// The mini-batch gather of every training step: scattered rows of a row-major matrix copied into one
/// contiguous batch for sgemm. It runs on one core while the BLAS threads wait, and each row is a fresh trip
/// to memory, so rows are asked for ahead of the copy.
public enum RowGather {
    /// How many rows ahead of the copy the gather prefetches (whole rows).
    static let lookahead = 4

    /// batch[j] ← source[rows[j]] for every j, each row `width` floats.
    public static func gather(rows: UnsafeBufferPointer<Int>, from source: UnsafePointer<Float>, width: Int,
                              into batch: UnsafeMutablePointer<Float>) {
        let lines = (width * MemoryLayout<Float>.size + 63) / 64
        for j in rows.indices {
            if j + lookahead < rows.count { conclave_prefetch(source + rows[j + lookahead] * width, lines) }
            (batch + j * width).update(from: source + rows[j] * width, count: width)
        }
    }

    /// Starts the first cache lines of each row on their way (the hardware prefetcher follows a row once
    /// begun): called with the next step's rows, they arrive while this step's sgemm runs.
    public static func prefetch(rows: UnsafeBufferPointer<Int>, from source: UnsafePointer<Float>, width: Int) {
        let lines = min(4, (width * MemoryLayout<Float>.size + 63) / 64)
        for i in rows { conclave_prefetch(source + i * width, lines) }
    }
}
