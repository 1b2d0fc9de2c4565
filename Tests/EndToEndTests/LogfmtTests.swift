@testable import ConclaveSupport
import Testing

/// Whatever a peer sends, one log line stays one line, readable and small.
@Suite struct LogfmtTests {
    @Test func valuesAreEscapedAndCut() {
        #expect(LogfmtHandler.quote("silo-1") == "silo-1")
        #expect(LogfmtHandler.quote("a b") == "\"a b\"")
        #expect(LogfmtHandler.quote("x\r\nlevel=critical msg=forged") == #""x\r\nlevel=critical msg=forged""#)
        #expect(LogfmtHandler.quote("esc\u{1B}[31m nul\u{0}") == #""esc\u{1b}[31m nul\u{0}""#)
        #expect(LogfmtHandler.quote("say \"hi\"\\") == #""say \"hi\"\\""#)
        let huge = LogfmtHandler.quote(String(repeating: "y", count: 4_000_000))
        #expect(huge.count < LogfmtHandler.maxValueCharacters + 40)
        #expect(huge.hasSuffix("…[4000000 bytes]\""))
        #expect(!huge.contains("\n"))
    }
}
