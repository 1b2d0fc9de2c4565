/// The byte strings a silo signs with its identity key for messages that change its own standing in a round,
/// so that nobody else can send them in its name. Shared by the agent (signing) and the coordinator (checking).
public enum SignedStatement {
    /// Resuming a secure attempt after the coordinator restarted.
    public static func resume(context: [UInt8], silo: String) -> [UInt8] {
        Array("conclave-resume-v1".utf8) + context + Array(silo.utf8)
    }

    /// Declining the task for a round.
    public static func decline(runID: String, round: Int, reason: DeclineReason, silo: String) -> [UInt8] {
        let r = UInt32(truncatingIfNeeded: round)
        let code = UInt8(DeclineReason.allCases.firstIndex(of: reason) ?? 0)
        return Array("conclave-decline-v1".utf8) + Array(runID.utf8) + [0]
            + [UInt8(r >> 24), UInt8(r >> 16 & 0xFF), UInt8(r >> 8 & 0xFF), UInt8(r & 0xFF)] + [code] + Array(silo.utf8)
    }
}
