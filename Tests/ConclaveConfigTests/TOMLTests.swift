import ConclaveConfig
import Testing

@Suite struct TOMLTests {
    @Test func parsesTheSubsetConfigsUse() throws {
        let t = try TOMLParser.parse("""
            # comment
            name = "demo"  # trailing comment
            rounds = 1_000
            rate = 1e-3
            on = true
            'quoted key' = 'C:\\path'
            hidden = [256,
                      128, ]  # multi-line
            inline = { a = 1, b.c = "x" }
            [model.sub]
            x = -2.5
            """, source: "t.toml")
        #expect(t["name"] == .string("demo"))
        #expect(t["rounds"] == .integer(1000))
        #expect(t["rate"] == .float(1e-3))
        #expect(t["on"] == .boolean(true))
        #expect(t["quoted key"] == .string("C:\\path"))
        #expect(t["hidden"] == .array([.integer(256), .integer(128)]))
        guard case .table(let inline) = t["inline"], case .table(let b) = inline["b"] else {
            Issue.record("inline table"); return
        }
        #expect(b["c"] == .string("x"))
        guard case .table(let model) = t["model"], case .table(let sub) = model["sub"] else { Issue.record("tables"); return }
        #expect(sub["x"] == .float(-2.5))
        #expect(t.lines["rounds"] == 3)
    }

    @Test func syntaxErrorsNameFileAndLine() {
        #expect(throws: ConfigError("t.toml:2: 'fast' is not a valid value (strings need quotes)")) {
            try TOMLParser.parse("a = 1\nmode = fast\n", source: "t.toml")
        }
        #expect(throws: ConfigError("t.toml:1: unterminated string")) { try TOMLParser.parse("a = \"x\n", source: "t.toml") }
        #expect(throws: ConfigError("t.toml:2: key 'a' is defined twice")) { try TOMLParser.parse("a = 1\na = 2", source: "t.toml") }
    }
}
