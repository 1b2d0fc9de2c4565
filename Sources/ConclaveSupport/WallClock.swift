import Foundation

/// Seconds since the Unix epoch: the time base the state machines and the database share.
public enum WallClock {
    public static func now() -> Double { Date().timeIntervalSince1970 }
}
