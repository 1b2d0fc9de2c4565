import Foundation

/// Reads a CSV file with a header row: one column (named) holds integer class labels, every other column a
/// numeric feature. Errors name the file, the line and the column.
public enum CSVReader {
    public static func read(path: String, labelColumn: String, classCount: Int? = nil) throws(DataError) -> Dataset {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): cannot read") }
        guard let text = String(data: data, encoding: .utf8) else { throw DataError("\(path): not UTF-8 text") }
        return try parse(text, labelColumn: labelColumn, classCount: classCount, source: path)
    }

    public static func parse(_ text: String, labelColumn: String, classCount: Int? = nil,
                             source: String = "<csv>") throws(DataError) -> Dataset {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? $0.dropLast() : $0
        }
        while let last = lines.last, last.allSatisfy(\.isWhitespace) { lines.removeLast() }
        guard let headerLine = lines.first else { throw DataError("\(source): empty file, expected a header row") }
        let header = headerLine.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard let labelIndex = header.firstIndex(of: labelColumn) else {
            throw DataError("\(source):1: no column named '\(labelColumn)' (columns: \(header.joined(separator: ", ")))")
        }
        guard header.count >= 2 else { throw DataError("\(source):1: need a label column and at least one feature") }
        var features = [Float]()
        var labels = [Int32]()
        for (offset, line) in lines.enumerated().dropFirst() {
            let lineNumber = offset + 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == header.count else {
                throw DataError("\(source):\(lineNumber): \(fields.count) fields, header has \(header.count)")
            }
            for (c, field) in fields.enumerated() {
                let value = field.trimmingCharacters(in: .whitespaces)
                if c == labelIndex {
                    guard let label = Int32(value), label >= 0 else {
                        throw DataError("\(source):\(lineNumber): column '\(header[c])': label '\(value)' is not a non-negative integer")
                    }
                    labels.append(label)
                } else {
                    guard let x = Float(value), x.isFinite else {
                        throw DataError("\(source):\(lineNumber): column '\(header[c])': '\(value)' is not a number")
                    }
                    features.append(x)
                }
            }
        }
        guard !labels.isEmpty else { throw DataError("\(source): no data rows after the header") }
        let classes = classCount ?? Int(labels.max()! + 1)
        if let i = labels.firstIndex(where: { Int($0) >= classes }) {
            throw DataError("\(source):\(i + 2): column '\(labelColumn)': label \(labels[i]) is not below \(classes) classes")
        }
        return try Dataset(features: features, labels: labels, featureCount: header.count - 1, classCount: classes)
    }
}
