// Client side of split mode's upstream (PROTOCOL.md §6.3): the link's outbound bytes leave
// as a sequence of POSTs with Content-Length, numbered so the server can check their order.
// A proxy that buffers whole request bodies passes them all the same.
//
//   LinkHandler ─write─▶ HTTPClientFraming ─enqueue/flush─▶ SplitUpstream ─POST s=0,1,2…─▶ server
//   fewer than unansweredLimit unanswered ─▶ next POST with everything queued (up to maxPostBytes)
//   response 2xx ─▶ its POST is done; the next may go
//   connection lost before the answer ─▶ the same POSTs again on a fresh connection, and one
//                                        POST per connection (`Connection: close`) from then on
//
// Once the server's GET answer allows it (`BYST-Split-Pipeline: 4`), the next POSTs go on
// the same connection before the previous ones' answers (HTTP/1.1 pipelining), so the
// connection does not idle for an answer's round trip between POSTs (through a relay adding
// 10 ms of round trip, uploads moved 1.6 Gbit/s instead of 0.5: docs/PERFORMANCE.md). Not
// through a forward proxy we have credentials for (a 407 answers one POST at a time), nor
// once a connection was lost or closed behind an answer: then one POST at a time again (a
// proxy closing behind answers is remembered for the peer's next links: PeerRuntime).
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
    /// POSTs unanswered at once at most, whatever the server allows.
    static let maxUnanswered = 4
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
    /// 2xx answers the current connection carried.
    private var answersOnConnection = 0
    /// The POST in flight is NTLM's bodyless Type 1 leg.
    private var ntlmLeg = false
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private var nextSequence: UInt64 = 0
    /// The POSTs taken and not yet answered, oldest first (some may wait to be written again
    /// after a lost connection).
    private var unanswered: [SplitPart] = []
    /// How many of `unanswered`, from the first, are written on `channel` and await their
    /// answers there.
    private var awaitingAnswers = 0
    /// POSTs the server lets us have unanswered (its GET answer's `BYST-Split-Pipeline`).
    private var serverAllowsUnanswered = 1
    /// A proxy closed a connection behind its first answer while a later POST was written on
    /// it (on this link, or on an earlier link to the same peer: `init`).
    private var proxyClosesConnections: Bool
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
    /// Called once when a proxy closes a connection behind its first answer with a later POST
    /// written on it, so the peer's next split links pipeline nothing from the start.
    var onProxyClosesConnections: (() -> Void)?

    init(route: HTTPRoute, token: String, auth: ProxyAuthSession?, proxyClosesConnections: Bool = false, connector: @escaping Connector) {
        self.route = route
        self.token = token
        self.auth = auth
        self.proxyClosesConnections = proxyClosesConnections
        self.connector = connector
    }

    /// Bytes kept: queued, and the unanswered POSTs' bodies.
    var retainedBytes: Int { pendingBytes + unanswered.reduce(0) { $0 + $1.size } }

    /// POSTs that may be unanswered now.
    var unansweredLimit: Int {
        auth?.hasCredentials != true && !onePostPerConnection && !proxyClosesConnections ? serverAllowsUnanswered : 1
    }

    /// Bytes kept in all before the link stops writing: the unanswered POSTs (up to
    /// `maxPostBytes` each) and 2 MiB queued behind them; it resumes below half of it.
    var highWater: Int { (unansweredLimit + 2) * Self.maxPostBytes }

    /// The most POSTs that were unanswered at once (for tests and the curious).
    private(set) var mostUnanswered = 0

    /// The server's GET answer said how many POSTs it lets a client have unanswered.
    func serverAllows(unanswered count: Int) {
        serverAllowsUnanswered = min(max(count, 1), Self.maxUnanswered)
        sendIfIdle()
    }

    var acceptsWrites: Bool { !closed && retainedBytes < highWater }

    func enqueue(_ bytes: ByteBuffer) {
        guard !closed, bytes.readableBytes > 0 else { return }
        pending.append(bytes)
        pendingBytes += bytes.readableBytes
        if retainedBytes >= highWater { filledUp = true }
    }

    func flush() { sendIfIdle() }

    func close() {
        closed = true
        pending.removeAll()
        pendingBytes = 0
        unanswered.removeAll()
        awaitingAnswers = 0
        channel?.close(promise: nil)
        channel = nil
    }

    /// Writes what may go now: unanswered POSTs not written on this connection (again, after
    /// a lost one), then new ones, while fewer than `unansweredLimit` await their answers.
    private func sendIfIdle() {
        while !closed, awaitingAnswers < unansweredLimit {
            guard awaitingAnswers < unanswered.count || pendingBytes > 0 else { return }
            guard let channel else { return connect() }
            if awaitingAnswers == unanswered.count {
                let part = SplitPart.take(sequence: nextSequence, from: &pending, maxBytes: Self.maxPostBytes)
                pendingBytes -= part.size
                nextSequence += 1
                unanswered.append(part)
            }
            write(unanswered[awaitingAnswers], on: channel)
            // Closed before it could carry anything (its close was seen before we had it).
            if !channel.isActive { return connectionLost(channel, "connection closed") }
        }
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
                answersOnConnection = 0
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
        awaitingAnswers += 1
        mostUnanswered = max(mostUnanswered, awaitingAnswers)
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

    /// The response to the oldest POST awaiting one on `channel` arrived (its body read to the end).
    func responded(_ head: HTTPResponseHead, keepAlive: Bool, on channel: Channel) {
        guard channel === self.channel, awaitingAnswers > 0, let part = unanswered.first else { return }
        awaitingAnswers -= 1
        if head.status == 407, let auth {
            return answerChallenge(head, for: part, keepAlive: keepAlive, auth: auth, on: channel)
        }
        // A bodyless Type 1 leg passed on to the hub would be an empty part.
        guard !ntlmLeg else { return fail("the proxy answered NTLM's Type 1 with HTTP \(head.status), not 407") }
        guard (200..<300).contains(head.status) else {
            return fail("HTTP \(head.status) \(head.reason) for part \(part.sequence)")
        }
        if exchange.isNTLM { connectionAuthenticated = true }
        unanswered.removeFirst()
        answersOnConnection += 1
        if !keepAlive || onePostPerConnection {
            // A POST written behind this answer goes again on the next connection. Closed
            // after its first answer, from now on one at a time (and for the peer's next
            // links): this proxy keeps no connection. A close after many answers (nginx's
            // `keepalive_requests`) only costs that resend.
            if awaitingAnswers > 0, answersOnConnection == 1 {
                proxyClosesConnections = true
                onProxyClosesConnections?()
            }
            awaitingAnswers = 0
            self.channel = nil
            channel.close(promise: nil)
        }
        sendIfIdle()
        // Only an answer frees bytes; the link resumes once enough are free, however many
        // answers that took.
        if filledUp, retainedBytes < highWater / 2 {
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
            awaitingAnswers = 0
            self.channel = nil
            channel.close(promise: nil)
        }
        sendIfIdle()
    }

    /// The connection closed or failed. The POSTs it carried, if unanswered, are sent again
    /// on a fresh connection (the server answers a repeat it already has without delivering
    /// it twice), unless the oldest has lost `maxLosses` connections in a row.
    func connectionLost(_ channel: Channel, _ reason: String) {
        guard channel === self.channel else { return }
        self.channel = nil
        channel.close(promise: nil)
        // An NTLM answer is good only on the connection its challenge came on.
        if exchange.isNTLM { answeredHead = nil }
        let lost = awaitingAnswers
        awaitingAnswers = 0
        guard lost > 0, !unanswered.isEmpty else { return sendIfIdle() }
        unanswered[0].losses += 1
        let part = unanswered[0]
        guard part.losses < Self.maxLosses else {
            return fail("part \(part.sequence) lost \(part.losses) connections in a row before its answer (last: \(reason))")
        }
        let last = part.sequence + UInt64(lost - 1)
        let what = lost == 1
            ? "part \(part.sequence) lost its connection before its answer (\(reason)): sending it again"
            : "parts \(part.sequence)–\(last) lost their connection before their answers (\(reason)): sending them again"
        if !onePostPerConnection {
            onePostPerConnection = true
            onResend?(what + "; one POST per connection (Connection: close) for the rest of this link")
        } else {
            onResend?(what)
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
