import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Test-only: `CONCLAVE_TEST_CRASH_AT=point[,point…]` makes the coordinator or an agent kill itself with SIGKILL the first
/// time it reaches a named protocol point, so the crash suite can stop a real process at exactly that point.
/// `term@point` asks for a graceful stop (SIGTERM) there instead, once. Unset (always, outside tests) it does nothing.
public enum CrashHook {
    static let points: Set<String> = {
        guard let value = ProcessInfo.processInfo.environment["CONCLAVE_TEST_CRASH_AT"], !value.isEmpty else { return [] }
        return Set(value.split(separator: ",").map(String.init))
    }()

    nonisolated(unsafe) private static var stopped = false

    public static func reach(_ point: String) {
        if points.contains("term@" + point), !stopped {
            stopped = true
            FileHandle.standardError.write(Data("crash hook: SIGTERM at \(point)\n".utf8))
            kill(getpid(), SIGTERM)
        }
        guard points.contains(point) else { return }
        FileHandle.standardError.write(Data("crash hook: SIGKILL at \(point)\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
