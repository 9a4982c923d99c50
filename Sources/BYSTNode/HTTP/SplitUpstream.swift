// Client side of split mode's upstream (PROTOCOL.md §6.3): the link's outbound bytes leave
// as a sequence of POSTs with Content-Length, one in flight at a time, numbered so the server
// can check their order. A proxy that buffers whole request bodies passes them all the same.
//
//   LinkHandler ─write─▶ HTTPClientFraming ─enqueue/flush─▶ SplitUpstream ─POST s=0,1,2…─▶ server
//   response 2xx ─▶ next POST with everything queued meanwhile (up to maxPostBytes)
//   connection lost before the answer ─▶ the same POST again on a fresh connection, and one
//                                        POST per connection (`Connection: close`) from then on
//
// Some proxies (tinyproxy) answer a POST as HTTP/1.1 without `Connection: close` and close
// the connection right after: the next POST, already written, meets a reset. The server
// answers a repeated part idempotently, so sending it again is safe whether or not it got there.
//
// Through a forward proxy that asks for credentials, a 407 is answered by sending the same
// POST again (ProxyAuthSession): NTLM on the same connection, after a bodyless Type 1, once
// per connection; Basic and Digest on a fresh connection, and then preemptively on each POST
// (Digest with the proxy's nonce).
import BYSTProto
import NIOCore

/// Lets the LinkHandler see backpressure from somewhere other than its own socket.
protocol LinkWriteGate: AnyObject {
    var acceptsWrites: Bool { get }
}

final class SplitUpstream: LinkWriteGate {
    typealias Connector = (SplitUpstream) -> EventLoopFuture<Channel>

    static let maxPostBytes = 1 << 20
    /// Bytes kept in all: the unanswered POST (up to `maxPostBytes`) and 2 MiB queued behind it.
    static let highWater = 3 << 20
    static let lowWater = 1536 << 10
    /// Connections a POST may lose in a row before its answer; the next loss fails the link.
    static let maxLosses = 3

    let route: HTTPRoute
    let token: String
    private let connector: Connector
    private let auth: ProxyAuthSession?
    /// The current connection's conversation with the proxy about the POST in flight.
    private var exchange = ProxyAuthenticator.Exchange()
    /// The head that answers the proxy's 407 to the unanswered POST, to send it with.
    private var answeredHead: HTTPRequestHead?
    /// NTLM authenticated the current connection: its next POSTs need no handshake.
    private var connectionAuthenticated = false
    /// The POST in flight is NTLM's bodyless Type 1 leg.
    private var ntlmLeg = false
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private var nextSequence: UInt64 = 0
    /// The POST written and not yet answered (or to be written again after a lost connection).
    private var unanswered: SplitPart?
    /// Whether `unanswered` is written on `channel` and its answer awaited there.
    private var awaitingAnswer = false
    /// After a connection was lost before an answer: a fresh connection for every POST.
    private(set) var onePostPerConnection = false
    private var channel: Channel?
    private var connecting = false
    private var closed = false
    /// Reached `highWater` since the last `onWritable`: the link may have stopped writing.
    private var filledUp = false
    private(set) var bytesSent: UInt64 = 0
    /// Called once, when a POST fails: the link is over.
    var onFailure: ((HTTPTransportError) -> Void)?
    /// Called when what is kept drained below `lowWater` after being full.
    var onWritable: (() -> Void)?
    /// Called when a POST is sent again (for the log).
    var onResend: ((String) -> Void)?

    init(route: HTTPRoute, token: String, auth: ProxyAuthSession?, connector: @escaping Connector) {
        self.route = route
        self.token = token
        self.auth = auth
        self.connector = connector
    }

    /// Bytes kept: queued, and the unanswered POST's body.
    var retainedBytes: Int { pendingBytes + (unanswered?.size ?? 0) }

    var acceptsWrites: Bool { !closed && retainedBytes < Self.highWater }

    func enqueue(_ bytes: ByteBuffer) {
        guard !closed, bytes.readableBytes > 0 else { return }
        pending.append(bytes)
        pendingBytes += bytes.readableBytes
        if retainedBytes >= Self.highWater { filledUp = true }
    }

    func flush() { sendIfIdle() }

    func close() {
        closed = true
        pending.removeAll()
        pendingBytes = 0
        unanswered = nil
        awaitingAnswer = false
        channel?.close(promise: nil)
        channel = nil
    }

    private func sendIfIdle() {
        guard !closed, !awaitingAnswer, unanswered != nil || pendingBytes > 0 else { return }
        guard let channel else { return connect() }
        let part: SplitPart
        if let unanswered {
            part = unanswered
        } else {
            part = SplitPart.take(sequence: nextSequence, from: &pending, maxBytes: Self.maxPostBytes)
            pendingBytes -= part.size
            nextSequence += 1
            unanswered = part
        }
        write(part, on: channel)
        // Closed before it could carry anything (its close was seen before we had it).
        if !channel.isActive { connectionLost(channel, "connection closed") }
    }

    private func connect() {
        guard !connecting else { return }
        connecting = true
        connector(self).assumeIsolated().whenComplete { [self] result in
            connecting = false
            switch result {
            case .success(let channel):
                guard !closed else { return channel.close(promise: nil) }
                self.channel = channel
                connectionAuthenticated = false
                sendIfIdle()
            case .failure(let error):
                fail("cannot connect to \(route.connectAddress): \(error)")
            }
        }
    }

    private func write(_ part: SplitPart, on channel: Channel) {
        var head = answeredHead ?? request(for: part)
        if answeredHead == nil, let auth, !(connectionAuthenticated && auth.connectionNeedsHandshake) {
            exchange = ProxyAuthenticator.Exchange()
            do throws(HTTPTransportError) { head = try auth.opening(head, exchange: &exchange) } catch {
                return fail(error)
            }
        }
        answeredHead = nil
        // NTLM's Type 1 draws a 407: it goes without the body, which the proxy would have to
        // read and discard before the connection could carry the Type 3.
        ntlmLeg = exchange.awaitingNTLMChallenge
        if ntlmLeg { head = HTTPRequestOpener.bodyless(head) }
        var headBytes = channel.allocator.buffer(capacity: 512)
        head.write(into: &headBytes)
        bytesSent += UInt64(headBytes.readableBytes + (ntlmLeg ? 0 : part.size))
        // Awaited before the flush: a write that meets a closed connection (EPIPE) closes the
        // channel inside `flush`, and `connectionLost` must then see a POST to send again.
        awaitingAnswer = true
        channel.write(headBytes, promise: nil)
        if !ntlmLeg { for buffer in part.body { channel.write(buffer, promise: nil) } }
        channel.flush()
    }

    private func request(for part: SplitPart) -> HTTPRequestHead {
        var headers = route.requestHeaders()
        headers.add("Content-Type", "application/octet-stream")
        headers.add("Content-Length", "\(part.size)")
        if onePostPerConnection { headers.add("Connection", "close") }
        return HTTPRequestHead(method: "POST", target: route.requestTarget(query: "t=\(token)&s=\(part.sequence)"), headers: headers)
    }

    /// The response to the POST in flight arrived (its body read to the end).
    func responded(_ head: HTTPResponseHead, keepAlive: Bool, on channel: Channel) {
        guard channel === self.channel, awaitingAnswer, let part = unanswered else { return }
        awaitingAnswer = false
        if head.status == 407, let auth {
            return answerChallenge(head, for: part, keepAlive: keepAlive, auth: auth, on: channel)
        }
        // A bodyless Type 1 leg passed on to the hub would be an empty part.
        guard !ntlmLeg else { return fail("the proxy answered NTLM's Type 1 with HTTP \(head.status), not 407") }
        guard (200..<300).contains(head.status) else {
            return fail("HTTP \(head.status) \(head.reason) for part \(part.sequence)")
        }
        if exchange.isNTLM { connectionAuthenticated = true }
        unanswered = nil
        if !keepAlive || onePostPerConnection {
            self.channel = nil
            channel.close(promise: nil)
        }
        sendIfIdle()
        // Only an answer frees bytes; the link resumes once enough are free, however many
        // answers that took.
        if filledUp, retainedBytes < Self.lowWater {
            filledUp = false
            onWritable?()
        }
    }

    /// The proxy's 407 to `part`: the same POST again with the answer, on the same connection
    /// (NTLM needs it kept) or, for Basic and Digest, on a fresh one.
    private func answerChallenge(_ head: HTTPResponseHead, for part: SplitPart, keepAlive: Bool, auth: ProxyAuthSession, on channel: Channel) {
        do throws(HTTPTransportError) {
            answeredHead = try auth.answer(head, to: request(for: part), exchange: &exchange)
        } catch { return fail(error) }
        if exchange.isNTLM {
            guard keepAlive else { return fail(.proxyAuth(.connectionClosed(scheme: "NTLM"), proxy: auth.proxy.description)) }
        } else {
            // Basic and Digest go on a fresh connection: a proxy that answered 407 before it
            // read the POST's body may not read another request on this one (squid stalls).
            self.channel = nil
            channel.close(promise: nil)
        }
        sendIfIdle()
    }

    /// The connection closed or failed. The POST it carried, if unanswered, is sent again on
    /// a fresh connection (the server answers a repeat it already has without delivering it
    /// twice), unless it has lost `maxLosses` connections in a row.
    func connectionLost(_ channel: Channel, _ reason: String) {
        guard channel === self.channel else { return }
        self.channel = nil
        channel.close(promise: nil)
        // An NTLM answer is good only on the connection its challenge came on.
        if exchange.isNTLM { answeredHead = nil }
        guard awaitingAnswer, var part = unanswered else { return sendIfIdle() }
        awaitingAnswer = false
        part.losses += 1
        unanswered = part
        guard part.losses < Self.maxLosses else {
            return fail("part \(part.sequence) lost \(part.losses) connections in a row before its answer (last: \(reason))")
        }
        if !onePostPerConnection {
            onePostPerConnection = true
            onResend?("part \(part.sequence) lost its connection before its answer (\(reason)): sending it again; "
                + "one POST per connection (Connection: close) for the rest of this link")
        } else {
            onResend?("part \(part.sequence) lost its connection before its answer (\(reason)): sending it again")
        }
        sendIfIdle()
    }

    /// The connection cannot go on (a response that is not HTTP): the link is over.
    func connectionFailed(_ channel: Channel, _ reason: String) {
        guard channel === self.channel else { return }
        fail(reason)
    }

    private func fail(_ reason: String) { fail(.upstream(reason)) }

    private func fail(_ error: HTTPTransportError) {
        guard !closed else { return }
        close()
        onFailure?(error)
    }
}
