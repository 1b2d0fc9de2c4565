import ConclaveIdentity
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
import SwiftASN1
import X509
import Foundation

/// Live TLS connections by the identity their certificate names, so revocation can close them at once
/// (closing the connection ends every stream on it; a secure round then treats the silo as dropped).
final class ConnectionRegistry: Sendable {
    private struct Live { var channel: any Channel; var notAfter: Date }
    private let live = Mutex<[PeerIdentity: [ObjectIdentifier: Live]]>([:])

    /// The transport's accept hook: a tracker after the TLS handler learns the peer when the handshake ends.
    func install(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let ssl = try channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self)
            try channel.pipeline.syncOperations.addHandler(PeerTracker(registry: self), position: .after(ssl))
            try channel.pipeline.syncOperations.addHandler(RequireTLS13(), position: .after(ssl))
        }
    }

    func add(_ identity: PeerIdentity, _ channel: any Channel, notAfter: Date) {
        live.withLock { $0[identity, default: [:]][ObjectIdentifier(channel)] = Live(channel: channel, notAfter: notAfter) }
    }

    func remove(_ channel: any Channel) {
        live.withLock { map in
            for key in map.keys { map[key]?[ObjectIdentifier(channel)] = nil }
        }
    }

    /// Closes every connection of `identity`; returns how many.
    func close(_ identity: PeerIdentity) -> Int {
        let channels = live.withLock { $0.removeValue(forKey: identity).map { $0.values.map(\.channel) } ?? [] }
        for channel in channels { channel.close(promise: nil) }
        return channels.count
    }

    /// Closes connections whose certificate expired while they were open (TLS checks expiry only at the
    /// handshake; the agent reconnects with its renewed certificate). Returns how many.
    func closeExpired(now: Date = Date()) -> Int {
        let expired = live.withLock { map -> [any Channel] in
            var out = [any Channel]()
            for (identity, channels) in map {
                for (key, entry) in channels where entry.notAfter < now {
                    out.append(entry.channel)
                    map[identity]?[key] = nil
                }
            }
            return out
        }
        for channel in expired { channel.close(promise: nil) }
        return expired.count
    }

    var count: Int { live.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}

/// Records the connection under its peer's identity once TLS is established; forgets it when it closes.
final class PeerTracker: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let registry: ConnectionRegistry

    init(registry: ConnectionRegistry) { self.registry = registry }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls,
           let nio = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
           let der = try? nio.toDERBytes(), let leaf = try? Certificate(derEncoded: der),
           let identity = PeerIdentity(certificate: leaf) {
            registry.add(identity, context.channel, notAfter: leaf.notValidAfter)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.remove(context.channel)
        context.fireChannelInactive()
    }
}

/// TLS 1.3 only: the gRPC transport fixes its minimum at 1.2 and exposes no setting, so a connection that
/// negotiated anything older is closed as soon as its handshake completes, before any request is read.
final class RequireTLS13: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    static func install(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let ssl = try channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self)
            try channel.pipeline.syncOperations.addHandler(RequireTLS13(), position: .after(ssl))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls,
           (try? context.pipeline.syncOperations.nioSSL_tlsVersion()) != .tlsv13 {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
