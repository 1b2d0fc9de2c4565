#if canImport(Glibc)
import Glibc
#endif

/// Training reads a dataset's rows in random order, so with 4 KiB pages nearly every row costs a TLB miss;
/// 2 MiB pages (Linux transparent huge pages, which Debian grants on request: "madvise" mode) remove most of
/// them. A large feature array is copied once into memory advised for huge pages before it is first touched.
enum HugePages {
    static let threshold = 8 << 20  // bytes: below this the TLB covers the array anyway

    static func rehome(_ values: [Float]) -> [Float] {
        #if os(Linux)
        let bytes = values.count * MemoryLayout<Float>.stride
        guard bytes >= threshold else { return values }
        return [Float](unsafeUninitializedCapacity: values.count) { buffer, count in
            let base = UInt(bitPattern: buffer.baseAddress!)
            let page = UInt(2 << 20)
            let start = (base + page - 1) & ~(page - 1), end = (base + UInt(bytes)) & ~(page - 1)
            if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_HUGEPAGE) }
            values.withUnsafeBufferPointer { buffer.baseAddress!.initialize(from: $0.baseAddress!, count: values.count) }
            count = values.count
        }
        #else
        return values
        #endif
    }
}
