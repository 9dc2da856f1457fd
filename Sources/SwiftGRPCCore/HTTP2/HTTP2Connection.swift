import CLinux
import CNGHTTP2
import Glibc

/// What server and client connections share: a byte transport below an HTTP/2 session, the read
/// loop feeding it, the write loop draining it, epoll write interest, the frame budget, and the
/// dispatch of nghttp2's callbacks to the calls of its streams. Owned by one loop, touched only
/// there. Subclasses add their role: accepting calls (server) or carrying a subchannel's calls
/// (client).
class HTTP2Connection: FDHandler {
  let loop: EventLoop
  let transport: ByteTransport
  let fd: Int32
  var session: HTTP2Session?
  var isDirty = false
  private var out: [UInt8] = []
  private var outOffset = 0
  private var writeInterest = false
  private(set) var closed = false
  /// Set once the connection is ending for misbehaviour: no more input is fed to the session.
  private(set) var terminating = false
  private var budget: FrameBudget
  /// Counts frames and DATA chunks nghttp2 reported; a read that moves it not at all carried
  /// only frames nghttp2 drops without a callback (DATA for closed streams) or a partial frame.
  private var callbacks = 0

  init(loop: EventLoop, transport: ByteTransport, controlFramesPerSecond: Int64) {
    self.loop = loop
    self.transport = transport
    self.fd = transport.fd
    budget = FrameBudget(perSecond: controlFramesPerSecond, now: monotonicNanos())
    out.reserveCapacity(65536)
  }

  // MARK: - Keepalive PING (both roles)

  /// The keepalive PING waiting for its ack, and the timer that gives up on it.
  private var pingTimeout: LoopTimer?

  /// Sends a keepalive PING; no ack within `timeoutNanos` closes the connection with `why`.
  final func sendKeepalivePing(timeoutNanos: Int64, _ why: String) {
    guard pingTimeout == nil, !closed, let session else { return }
    session.ping()
    loop.markDirty(self)
    pingTimeout = loop.schedule(after: timeoutNanos) { [weak self] in
      guard let self, !self.closed else { return }
      self.pingTimeout = nil
      self.close(reason: Status(.unavailable, why))
    }
  }

  /// A PING ack arrived: the keepalive PING is answered.
  final func keepaliveAcked() {
    loop.cancel(pingTimeout)
    pingTimeout = nil
  }

  /// The status given to calls when the peer closes the socket.
  var peerClosedStatus: Status { Status(.unavailable, "connection closed by the peer") }

  /// Called once, when the connection closes, after the session is gone. Subclasses end their
  /// calls here.
  func didClose(reason: Status) {}

  // MARK: - I/O

  func handleEvents(_ events: UInt32) {
    if lingering {
      drainLinger()
      return
    }
    if transport.needsHandshake {
      continueHandshake()
      return
    }
    if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue)
      != 0
    {
      readAvailable()
      if closed { return }
    }
    // Answers given inline while we parsed go out in the same write.
    loop.drainQueue()
    flush()
  }

  final func readAvailable() {
    let buffer = loop.readBuffer
    for _ in 0..<16 {
      guard let session else { return }
      switch transport.read(into: buffer) {
      case .bytes(let n):
        if terminating { continue }  // drain and drop: the GOAWAY is on its way
        let before = callbacks
        let rv = session.receive(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        if rv < 0 {
          // A connection error: nghttp2 may have queued a GOAWAY saying why; let it out first.
          let reason = Status(.unavailable, "HTTP/2 protocol error: \(HTTP2Session.describe(Int32(rv)))")
          terminationStatus = reason
          terminating = true
          flush()
          if !closed { linger() }
          return
        }
        if closed { return }
        if callbacks == before { charge() }  // a read of frames nghttp2 silently dropped
        if n < buffer.count { return }
      case .wouldBlock:
        return
      case .eof, .failed:
        close(reason: peerClosedStatus)
        return
      }
    }
  }

  // MARK: - TLS handshake

  /// Runs the transport's handshake as far as the socket allows; once it is done the role
  /// starts HTTP/2 (`handshakeCompleted`) and whatever already arrived is read.
  final func continueHandshake() {
    switch transport.handshakeStep() {
    case .done:
      setWriteInterest(false)
      handshakeCompleted()
      if closed { return }
      readAvailable()  // application data may have come with the handshake's last flight
      if closed { return }
      loop.drainQueue()
      flush()
    case .wantRead:
      setWriteInterest(false)
    case .wantWrite:
      setWriteInterest(true)
    case .failed(let why):
      close(reason: Status(.unavailable, why))
    }
  }

  /// The transport's handshake is done: the role starts its HTTP/2 session.
  func handshakeCompleted() {}

  /// Writes what the session has to send; closes the connection once the session is done.
  func flush() {
    guard !closed, !lingering, !transport.needsHandshake, let session else { return }
    while true {
      if outOffset == out.count {
        out.removeAll(keepingCapacity: true)
        outOffset = 0
        while out.count < 65536 {
          switch session.nextOutput() {
          case .bytes(let b):
            let start = out.count
            out.append(contentsOf: b)
            session.patchOutput(&out, from: start)
            continue
          case .none:
            break
          case .failed(let why):
            close(reason: Status(.internalError, "HTTP/2 send failed: \(why)"))
            return
          }
          break
        }
        if out.isEmpty { break }
      }
      let result = out.withUnsafeBytes { raw in
        transport.write(UnsafeRawBufferPointer(rebasing: raw[outOffset...]))
      }
      switch result {
      case .bytes(let n):
        outOffset += n
      case .wouldBlock:
        setWriteInterest(true)
        return
      case .eof, .failed:
        close(reason: Status(.unavailable, "connection lost while writing"))
        return
      }
    }
    setWriteInterest(false)
    if !session.isActive {
      if terminating {
        linger()
      } else {
        close(reason: Status(.unavailable, "connection closed"))
      }
    }
  }

  final func setWriteInterest(_ on: Bool) {
    guard on != writeInterest else { return }
    writeInterest = on
    var events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
    if on { events |= EPOLLOUT.rawValue }
    loop.modify(fd: fd, events: events)
  }

  /// Closes the socket and the session, then lets the subclass end its calls. Never from inside
  /// an nghttp2 callback (use `terminate`).
  func close(reason: Status) {
    guard !closed else { return }
    closed = true
    if lingering {
      loop.cancel(lingerTimer)
      lingerTimer = nil
      lingering = false
    }
    loop.unregister(fd: fd)
    transport.close()
    endSession(reason)
  }

  private var sessionEnded = false

  /// Deletes the session and lets the subclass end its calls, once.
  private func endSession(_ reason: Status) {
    guard !sessionEnded else { return }
    sessionEnded = true
    keepaliveAcked()  // no PING is waited for any more
    session?.delete()
    session = nil
    didClose(reason: reason)
  }

  // MARK: - Lingering close

  /// How long a terminated connection keeps reading (and dropping) before its socket closes.
  static let lingerNanos: Int64 = 1_000_000_000
  private var lingering = false
  private var lingerTimer: LoopTimer?

  /// The GOAWAY that ends a misbehaving peer's connection is written; its calls end now, but the
  /// socket stays open, reading and dropping, until the peer closes or a second passes. Closing
  /// at once with the peer's flood unread in the receive buffer would send a TCP RST, and the
  /// peer's kernel would discard the GOAWAY before the peer read why.
  private func linger() {
    guard !lingering, !closed else { return }
    lingering = true
    transport.shutdownWrite()
    endSession(terminationStatus)
    lingerTimer = loop.schedule(after: HTTP2Connection.lingerNanos) { [weak self] in
      self?.lingerTimer = nil
      self?.close(reason: Status(.unavailable, "connection closed"))
    }
  }

  private func drainLinger() {
    let buffer = loop.readBuffer
    for _ in 0..<16 {
      switch transport.read(into: buffer) {
      case .bytes: continue
      case .wouldBlock: return
      case .eof, .failed:
        close(reason: terminationStatus)
        return
      }
    }
  }

  /// Ends the connection for misbehaviour: GOAWAY with `code`, no more input; it closes once the
  /// GOAWAY is written. Safe inside nghttp2 callbacks.
  func terminate(_ code: HTTP2Session.ErrorCode, _ why: String, debug: StaticString = "") {
    guard !terminating, !closed, let session else { return }
    terminating = true
    terminationStatus = Status(.unavailable, why)
    if debug.utf8CodeUnitCount > 0 {
      session.terminate(code, debug: debug)
    } else {
      session.terminate(code)
    }
    loop.markDirty(self)
  }

  private var terminationStatus = Status(.unavailable, "connection terminated")

  /// Returns flow-control credit to the peer for bytes the application has taken.
  func consume(streamID: Int32, bytes: Int) {
    session?.consume(streamID: streamID, bytes: bytes)
  }

  // MARK: - nghttp2 callbacks (inside `session.receive` / `nextOutput`)

  /// A frame header arrived: control frames are charged to the budget.
  final func frameBegins(type: UInt8, flags: UInt8, length: Int) {
    callbacks &+= 1
    guard !terminating else { return }
    let isControl: Bool
    switch UInt32(type) {
    case NGHTTP2_DATA.rawValue:
      isControl = length == 0 && flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) == 0
    case NGHTTP2_HEADERS.rawValue, NGHTTP2_CONTINUATION.rawValue, NGHTTP2_GOAWAY.rawValue:
      isControl = false
    case NGHTTP2_SETTINGS.rawValue, NGHTTP2_PING.rawValue:
      isControl = flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0
    default:  // WINDOW_UPDATE, PRIORITY, RST_STREAM, PUSH_PROMISE, unknown types
      isControl = true
    }
    if isControl { charge() }
  }

  /// One unit of the control-frame budget; the connection ends when the peer has used it up.
  private func charge() {
    if !terminating && !budget.spend(now: monotonicNanos()) {
      terminate(.enhanceYourCalm, "the peer sent too many control frames (flood)")
    }
  }

  /// A frame went out.
  func frameSent(_ frame: FrameHeader) {
    if frame.kind == .data { budget.earn() }
  }

  /// A header block begins on a stream: a request (server), a response, or (`trailers`) trailers
  /// or a block that ends the stream.
  func headersBegin(streamID: Int32, isRequest: Bool, trailers: Bool) {
    session?.call(for: streamID)?.headerBlockBegins(trailers: trailers)
  }

  /// The header of a frame received or sent, as the roles see it.
  struct FrameHeader {
    enum Kind { case data, headers, settings, ping, goaway, other }
    let kind: Kind
    let streamID: Int32
    /// SETTINGS and PING: the ACK flag.
    let isAck: Bool
    /// DATA and HEADERS: the END_STREAM flag.
    let endsStream: Bool
    /// GOAWAY received: its error code and debug data.
    var goawayCode: UInt32 = 0
    var goawayDebug = ""

    init(type: UInt8, flags: UInt8, streamID: Int32) {
      switch UInt32(type) {
      case NGHTTP2_DATA.rawValue: kind = .data
      case NGHTTP2_HEADERS.rawValue: kind = .headers
      case NGHTTP2_SETTINGS.rawValue: kind = .settings
      case NGHTTP2_PING.rawValue: kind = .ping
      case NGHTTP2_GOAWAY.rawValue: kind = .goaway
      default: kind = .other
      }
      self.streamID = streamID
      isAck = (kind == .settings || kind == .ping) && flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
      endsStream = (kind == .data || kind == .headers) && flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    }
  }

  /// A frame was received in full. Subclasses handle connection frames and call super.
  func frameReceived(_ frame: FrameHeader) {
    switch frame.kind {
    case .headers:
      guard let call = session?.call(for: frame.streamID) else { return }
      call.headersEnded(endStream: frame.endsStream)
      if frame.endsStream { call.peerEnded() }
    case .data:
      if frame.endsStream { session?.call(for: frame.streamID)?.peerEnded() }
    default:
      break
    }
  }

  /// A chunk of DATA for a stream.
  final func dataReceived(streamID: Int32, _ chunk: UnsafeRawBufferPointer) {
    callbacks &+= 1
    if let call = session?.call(for: streamID) {
      call.receivedData(chunk)
    } else {
      consume(streamID: streamID, bytes: chunk.count)
    }
  }

  /// A stream closed (both halves ended, or reset). Subclasses forget the call.
  func streamClosed(streamID: Int32, errorCode: UInt32) {}
}
