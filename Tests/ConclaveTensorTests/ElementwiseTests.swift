import ConclaveTensor
import Testing

/// The SIMD passes against their one-element-at-a-time definitions, on lengths that leave a scalar tail.
@Suite struct ElementwiseTests {
    func values(_ n: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 100
        }
    }

    @Test(arguments: [0, 7, 8, 37, 1000]) func reluMaskZeroesWhereTheActivationIsNotPositive(_ n: Int) {
        let a = values(n, seed: 1).map { max($0, 0) }
        var p = values(n, seed: 2)
        let expected = zip(p, a).map { $1 > 0 ? $0 : 0 }
        p.withUnsafeMutableBufferPointer { pb in
            a.withUnsafeBufferPointer { ab in
                guard n > 0 else { return }
                Elementwise.reluMask(pb.baseAddress!, by: ab.baseAddress!, count: n)
            }
        }
        #expect(p == expected)
    }

    @Test(arguments: [(3, 10), (5, 16), (2, 257)]) func addBiasAddsToEveryRowAndClampsBelowTheTop(_ shape: (Int, Int)) {
        let (rows, width) = shape
        let bias = values(width, seed: 3), start = values(rows * width, seed: 4)
        for relu in [false, true] {
            var x = start
            x.withUnsafeMutableBufferPointer { xb in
                bias.withUnsafeBufferPointer { Elementwise.addBias(xb.baseAddress!, $0.baseAddress!, rows: rows, width: width, relu: relu) }
            }
            let expected = start.indices.map { i -> Float in
                let v = start[i] + bias[i % width]
                return relu ? max(v, 0) : v
            }
            #expect(x == expected, "relu \(relu)")
        }
    }

    @Test func parallelChunksCoverEveryElementOnce() {
        BLAS.setThreads(2)
        for count in [0, 1, 1000, 100_003] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
                let p = h.baseAddress
                Parallel.chunks(count, minimum: 100) { range in
                    for i in range { p![i] += 1 }
                }
            }
            #expect(hits.allSatisfy { $0 == 1 }, "count \(count)")
        }
    }

    /// The gather copies exactly the chosen rows, in order — with repeats, fewer rows than the lookahead, none,
    /// and a row width that is not a whole number of cache lines.
    @Test(arguments: [[], [3], [5, 0, 5, 2], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1]])
    func gatherCopiesTheChosenRowsInOrder(_ rows: [Int]) {
        let width = 37
        let source = (0..<(10 * width)).map { Float($0) }
        var batch = [Float](repeating: -1, count: rows.count * width + 1)
        source.withUnsafeBufferPointer { s in
            rows.withUnsafeBufferPointer { r in
                batch.withUnsafeMutableBufferPointer { b in
                    RowGather.gather(rows: r, from: s.baseAddress!, width: width, into: b.baseAddress!)
                    RowGather.prefetch(rows: r, from: s.baseAddress!, width: width)  // a hint: changes nothing
                }
            }
        }
        #expect(Array(batch.dropLast()) == rows.flatMap { source[($0 * width)..<(($0 + 1) * width)] })
        #expect(batch.last == -1, "nothing written past the batch")
    }
}
