import CZlib
import Foundation

/// Whole-file reads and writes through zlib. `gzopen` reads plain files transparently, so readers accept
/// both `file.gz` and an already decompressed `file`.
public enum Gzip {
    public static func read(path: String) throws(DataError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        guard let file = gzopen(path, "rb") else { throw DataError("\(path): cannot open") }
        defer { gzclose(file) }
        gzbuffer(file, 1 << 20)
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw DataError("\(path): corrupt gzip data") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }

    /// Writes `bytes` gzip-compressed (fast level) to `path`, atomically via a temporary file.
    public static func write(_ bytes: [UInt8], path: String) throws(DataError) {
        let tmp = path + ".tmp"
        guard let file = gzopen(tmp, "wb1") else { throw DataError("\(path): cannot create") }
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 24)
            let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress! + offset, UInt32(n)) }
            if written != Int32(n) {
                gzclose(file)
                throw DataError("\(path): write failed")
            }
            offset += n
        }
        guard gzclose(file) == Z_OK else { throw DataError("\(path): write failed") }
        guard rename(tmp, path) == 0 else { throw DataError("\(path): cannot move into place") }
    }
}
