import ConclaveSupport
import ConclaveWireConversions
import ConclaveFederation
import Prometheus

/// What an operator watches: rounds committed and abandoned, live silos, refusals by reason, commit faults,
/// bytes in and out, phase and round durations, privacy spent per run. Served as Prometheus text.
public final class CoordinatorMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let roundsCommitted: Counter
    private let roundsAbandoned: Counter
    private let commitFaults: Counter
    private let silosLive: Gauge
    private let bytesIn: Counter
    private let bytesOut: Counter
    private let roundSeconds: DurationHistogram

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "conclave", metricName: metric, unitName: unit, helpText: help)
    }

    static let buckets: [Duration] = [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15),
                                      .seconds(60), .seconds(300), .seconds(1800)]

    public init() {
        roundsCommitted = registry.makeCounter(descriptor: Self.name("rounds_committed", "total", "Rounds committed (model version made durable)."))
        roundsAbandoned = registry.makeCounter(descriptor: Self.name("rounds_abandoned", "total",
            "Round attempts abandoned (too few silos, secure-aggregation abort, shutdown)."))
        commitFaults = registry.makeCounter(descriptor: Self.name("commit_faults", "total",
            "Failed attempts to make a computed round durable; each is retried with backoff."))
        silosLive = registry.makeGauge(descriptor: Self.name("silos_live", "", "Silos seen within the liveness window by the active run."))
        bytesIn = registry.makeCounter(descriptor: Self.name("received", "bytes_total", "Model bytes received (updates and masked inputs)."))
        bytesOut = registry.makeCounter(descriptor: Self.name("sent", "bytes_total", "Model bytes sent (global weights in tasks)."))
        roundSeconds = registry.makeDurationHistogram(descriptor: Self.name("round", "seconds", "Wall time from a round's opening to its commit."),
                                                      buckets: Self.buckets)
    }

    func roundCommitted(seconds: Double) {
        roundsCommitted.increment()
        roundSeconds.recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    func roundAbandoned() { roundsAbandoned.increment() }
    func commitFault() { commitFaults.increment() }
    func live(_ count: Int) { silosLive.set(Double(count)) }
    func received(values: Int) { bytesIn.increment(by: Int64(values * 4)) }
    func sent(values: Int) { bytesOut.increment(by: Int64(values * 4)) }

    /// A request refused at the edge, by its error code (invalidArgument, permissionDenied, …).
    func refused(_ code: String) {
        registry.makeCounter(descriptor: Self.name("refusals", "total", "Requests refused, by reason."), labels: [("reason", code)]).increment()
    }

    func declined(_ reason: DeclineReason) {
        registry.makeCounter(descriptor: Self.name("declines", "total", "Tasks silos declined by their own policy or records, by reason."),
                             labels: [("reason", reason.rawValue)]).increment()
    }

    /// A secure-aggregation phase closed after `seconds` (labelled by the phase that closed).
    func phaseClosed(_ phase: String, seconds: Double) {
        registry.makeDurationHistogram(descriptor: Self.name("secure_phase", "seconds", "Duration of each secure-aggregation phase."),
                                       labels: [("phase", phase)], buckets: Self.buckets)
            .recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    func privacySpent(run: String, epsilon: Double) {
        registry.makeGauge(descriptor: Self.name("privacy_epsilon", "", "Cumulative epsilon the run has spent (record mode: the largest silo's own)."),
                           labels: [("run", run)]).set(epsilon)
    }

    public func text() -> String { registry.emitToString() }
}
