import CNGHTTP2

/// An nghttp2 session: framing, HPACK, flow control, settings. The only type that calls
/// nghttp2 (besides the callback table, which calls back into connections). Owned by one
/// connection, touched only on its loop.
final class HTTP2Session {
  /// The HTTP/2 error codes the runtime sends.
  enum ErrorCode: UInt32 {
    case noError = 0x0
    case protocolError = 0x1
    case internalError = 0x2
    case cancel = 0x8
    case refusedStream = 0x7
    case enhanceYourCalm = 0xB
  }

  /// The SETTINGS the runtime sends.
  enum Setting {
    case enablePush
    case initialWindowSize
    case maxHeaderListSize

    var id: nghttp2_settings_id {
      switch self {
      case .enablePush: return NGHTTP2_SETTINGS_ENABLE_PUSH
      case .initialWindowSize: return NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE
      case .maxHeaderListSize: return NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE
      }
    }
  }

  private var raw: OpaquePointer?
  /// The MAX_CONCURRENT_STREAMS value to put on the wire in the first SETTINGS frame (see
  /// `start(settings:maxConcurrentStreams:)`).
  private var advertiseMaxConcurrentStreams: UInt32?

  private init(raw: OpaquePointer) { self.raw = raw }

  /// A server session reaching `owner` from its callbacks.
  static func server(owner: HTTP2Connection) -> HTTP2Session? {
    make(owner, nghttp2_session_server_new2)
  }

  static func client(owner: HTTP2Connection) -> HTTP2Session? {
    make(owner, nghttp2_session_client_new2)
  }

  private static func make(
    _ owner: HTTP2Connection,
    _ new: (UnsafeMutablePointer<OpaquePointer?>?, OpaquePointer?, UnsafeMutableRawPointer?,
            OpaquePointer?) -> Int32
  ) -> HTTP2Session? {
    var s: OpaquePointer?
    let rv = new(&s, NGHTTP2Callbacks.shared.table, Unmanaged.passUnretained(owner).toOpaque(),
                 NGHTTP2Callbacks.shared.options)
    guard rv == 0, let s else { return nil }
    return HTTP2Session(raw: s)
  }

  /// Frees the session. Never from inside one of its callbacks.
  func delete() {
    nghttp2_session_del(raw)
    raw = nil
  }

  // MARK: - Settings

  /// Submits the connection's first SETTINGS and its receive window.
  ///
  /// `maxConcurrentStreams`, when given, is advertised to the peer but not handed to nghttp2:
  /// nghttp2 treats a peer that exceeds an acknowledged limit as a connection error, which would
  /// end every live call, while gRPC refuses only the excess stream (REFUSED_STREAM, as C-core
  /// does). So nghttp2 is told "no limit", the value is written into the frame on its way out,
  /// and the server enforces it stream by stream.
  func start(settings: [(Setting, UInt32)], maxConcurrentStreams: UInt32?,
             connectionWindow: Int32) {
    var entries = settings.map { nghttp2_settings_entry(settings_id: Int32($0.0.id.rawValue), value: $0.1) }
    if let maxConcurrentStreams {
      entries.append(nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(Int32.max)))
      advertiseMaxConcurrentStreams = maxConcurrentStreams
    }
    nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count)
    nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, connectionWindow)
  }

  // MARK: - I/O

  /// Feeds received bytes. Returns the number processed, or a negative nghttp2 error.
  func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
    nghttp2_session_mem_recv(raw, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
  }

  enum Output {
    case bytes(UnsafeBufferPointer<UInt8>)
    case none
    case failed(String)
  }

  /// The next bytes nghttp2 has to send (valid until the next call).
  func nextOutput() -> Output {
    var p: UnsafePointer<UInt8>?
    let n = nghttp2_session_mem_send(raw, &p)
    if n < 0 { return .failed(HTTP2Session.describe(Int32(n))) }
    if n == 0 { return .none }
    return .bytes(UnsafeBufferPointer(start: p, count: n))
  }

  /// Rewrites the first SETTINGS frame in `out` (from `offset`) to advertise the
  /// MAX_CONCURRENT_STREAMS given to `start`. Called on every output until it has happened.
  func patchOutput(_ out: inout [UInt8], from offset: Int) {
    guard let value = advertiseMaxConcurrentStreams else { return }
    advertiseMaxConcurrentStreams = nil
    // Frame header: length (3), type (1), flags (1), stream id (4); entries of id (2), value (4).
    guard out.count - offset >= 9, out[offset + 3] == 0x4, out[offset + 4] == 0 else {
      assertionFailure("the first frame of a server session is not its SETTINGS")
      return
    }
    let length = Int(out[offset]) << 16 | Int(out[offset + 1]) << 8 | Int(out[offset + 2])
    var i = offset + 9
    while i + 6 <= offset + 9 + length && i + 6 <= out.count {
      if out[i] == 0 && out[i + 1] == UInt8(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue) {
        out[i + 2] = UInt8(truncatingIfNeeded: value >> 24)
        out[i + 3] = UInt8(truncatingIfNeeded: value >> 16)
        out[i + 4] = UInt8(truncatingIfNeeded: value >> 8)
        out[i + 5] = UInt8(truncatingIfNeeded: value)
      }
      i += 6
    }
  }

  /// Whether the session still wants to read or write; false once it is done (GOAWAY
  /// exchanged, or terminated).
  var isActive: Bool {
    nghttp2_session_want_read(raw) != 0 || nghttp2_session_want_write(raw) != 0
  }

  // MARK: - Streams

  /// The call bound to a stream, if any.
  func call(for streamID: Int32) -> Call? {
    guard let p = nghttp2_session_get_stream_user_data(raw, streamID) else { return nil }
    return Unmanaged<Call>.fromOpaque(p).takeUnretainedValue()
  }

  /// Binds `call` to `streamID` (unretained: the connection keeps the call alive).
  func bind(_ call: Call, to streamID: Int32) {
    nghttp2_session_set_stream_user_data(raw, streamID, Unmanaged.passUnretained(call).toOpaque())
  }

  /// Returns flow-control credit to the peer for bytes the application has taken.
  func consume(streamID: Int32, bytes: Int) {
    guard bytes > 0 else { return }
    if nghttp2_session_consume(raw, streamID, bytes) != 0 {
      nghttp2_session_consume_connection(raw, bytes)
    }
  }

  /// Submits response headers; with `body`, DATA follows from the call's `readData`.
  @discardableResult
  func submitResponse(streamID: Int32, headers: HeaderBlock, body: Bool) -> Bool {
    headers.withNV { nva, n in
      if !body { return nghttp2_submit_response(raw, streamID, nva, n, nil) == 0 }
      var provider = nghttp2_data_provider(
        source: nghttp2_data_source(ptr: nil), read_callback: callReadCallback)
      return nghttp2_submit_response(raw, streamID, nva, n, &provider) == 0
    }
  }

  /// Submits request headers for `call`, with DATA from its `readData`. Returns the new stream
  /// id, or a negative nghttp2 error (stream ids exhausted).
  func submitRequest(headers: HeaderBlock, call: Call) -> Int32 {
    var provider = nghttp2_data_provider(
      source: nghttp2_data_source(ptr: nil), read_callback: callReadCallback)
    return headers.withNV { nva, n in
      nghttp2_submit_request(raw, nil, nva, n, &provider, Unmanaged.passUnretained(call).toOpaque())
    }
  }

  /// Submits trailers (from inside the data source, after the last DATA).
  func submitTrailers(streamID: Int32, headers: HeaderBlock) {
    headers.withNV { nva, n in _ = nghttp2_submit_trailer(raw, streamID, nva, n) }
  }

  /// Resumes a stream whose data source returned "deferred".
  func resumeData(streamID: Int32) {
    nghttp2_session_resume_data(raw, streamID)
  }

  func resetStream(_ streamID: Int32, _ code: ErrorCode) {
    nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
  }

  // MARK: - Connection

  /// GOAWAY NO_ERROR naming the last stream processed: no new streams, the others finish.
  /// `debug`: its debug data (why, as gRPC C-core words it: "max_age", "max_idle").
  func submitGracefulGoaway(debug: StaticString = "") {
    nghttp2_submit_goaway(
      raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(raw),
      ErrorCode.noError.rawValue, debug.utf8Start, debug.utf8CodeUnitCount)
  }

  /// The first step of a graceful GOAWAY (server): GOAWAY with the largest stream id, which
  /// tells the client to open no more streams without refusing those already on their way.
  func submitShutdownNotice() {
    nghttp2_submit_shutdown_notice(raw)
  }

  /// GOAWAY with `code` and `debug` data (what a peer reads as the reason: "too_many_pings"),
  /// then the session is done once it is sent (nghttp2's terminating GOAWAY follows it: it
  /// cannot carry debug data).
  func terminate(_ code: ErrorCode, debug: StaticString) {
    nghttp2_submit_goaway(
      raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(raw),
      code.rawValue, debug.utf8Start, debug.utf8CodeUnitCount)
    nghttp2_session_terminate_session(raw, code.rawValue)
  }

  /// GOAWAY with `code`; the session is done once it is sent.
  func terminate(_ code: ErrorCode) {
    nghttp2_session_terminate_session(raw, code.rawValue)
  }

  func ping() {
    nghttp2_submit_ping(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
  }

  static func describe(_ code: Int32) -> String {
    String(cString: nghttp2_strerror(code))
  }

  static func describeHTTP2Error(_ code: UInt32) -> String {
    String(cString: nghttp2_http2_strerror(code))
  }
}

/// nghttp2 pulls a stream's DATA from its call (both roles).
private let callReadCallback: nghttp2_data_source_read_callback = {
  session, streamID, buf, length, flags, _, _ in
  guard let buf, let flags,
    let p = nghttp2_session_get_stream_user_data(session, streamID)
  else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
  let call = Unmanaged<Call>.fromOpaque(p).takeUnretainedValue()
  switch call.readData(into: buf, length: length) {
  case .bytes(let n, let end):
    switch end {
    case .none: break
    case .endStream: flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
    case .trailers: flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
    }
    return n
  case .deferred:
    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
  }
}

/// What a call's data source gives nghttp2.
enum DataRead {
  /// `count` bytes, and how the stream's DATA ends here (if it does).
  case bytes(Int, end: DataEnd)
  /// Nothing now: the call resumes the stream when it has more.
  case deferred
}

enum DataEnd {
  case none
  /// END_STREAM on this DATA frame.
  case endStream
  /// No END_STREAM: trailers follow (already submitted).
  case trailers
}
