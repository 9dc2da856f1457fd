import CNGHTTP2

/// The nghttp2 callback table and options, built once and shared by server and client sessions.
/// Callbacks capture nothing: they reach their connection through `user_data` and dispatch to
/// its (role-specific) methods, which reach the call through the stream's user data.
struct NGHTTP2Callbacks: @unchecked Sendable {
  // @unchecked: the pointers are created once and never mutated afterwards; nghttp2 only reads.
  let table: OpaquePointer
  let options: OpaquePointer

  static let shared = NGHTTP2Callbacks()

  private init() {
    var opt: OpaquePointer?
    nghttp2_option_new(&opt)
    nghttp2_option_set_no_auto_window_update(opt, 1)
    // gRPC uses no stream priorities: keep no closed streams for a priority tree (else a
    // connection retains every stream it ever carried, up to its concurrency limit).
    nghttp2_option_set_no_closed_streams(opt, 1)
    // SETTINGS and PING floods are cut by the connection's control-frame budget, with a GOAWAY
    // the peer can read; nghttp2's own limit on queued ACKs (which ends the session without
    // one) stays as a backstop above what one read buffer can hold.
    nghttp2_option_set_max_outbound_ack(opt, 16384)
    // gRPC peers (grpcio among them) send grpc-message with unescaped spaces at its ends, which
    // RFC 9113 forbids; accept them rather than resetting the stream.
    nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(opt, 1)
    // Frame types nghttp2 does not know reach no callback unless claimed as extensions: claim
    // them all (10...255), so that they pass through the frame budget, then drop them.
    for type in UInt8(10)...UInt8(255) { nghttp2_option_set_user_recv_extension_type(opt, type) }
    options = opt!

    var cbs: OpaquePointer?
    nghttp2_session_callbacks_new(&cbs)
    table = cbs!

    nghttp2_session_callbacks_set_on_begin_frame_callback(table) { _, hd, ud in
      guard let hd else { return 0 }
      withConnection(ud) {
        $0.frameBegins(type: hd.pointee.type, flags: hd.pointee.flags, length: hd.pointee.length)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_extension_chunk_recv_callback(table) { _, _, _, _, _ in 0 }
    nghttp2_session_callbacks_set_unpack_extension_callback(table) { _, _, _, _ in
      Int32(NGHTTP2_ERR_CANCEL.rawValue)  // extension frames are ignored
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(table) { _, frame, ud in
      guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
      let cat = frame.pointee.headers.cat
      withConnection(ud) {
        $0.headersBegin(
          streamID: frame.pointee.hd.stream_id, isRequest: cat == NGHTTP2_HCAT_REQUEST,
          trailers: cat == NGHTTP2_HCAT_HEADERS
            || frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(table) {
      session, frame, name, namelen, value, valuelen, _, _ in
      guard let frame, let name, let value, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
      else { return 0 }
      // The hottest callback (one per header field): straight to the stream's call.
      withCall(session, frame.pointee.hd.stream_id) {
        $0.receivedHeader(
          name: UnsafeBufferPointer(start: name, count: namelen),
          value: UnsafeBufferPointer(start: value, count: valuelen))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(table) { _, frame, ud in
      guard let frame else { return 0 }
      let hd = frame.pointee.hd
      var header = HTTP2Connection.FrameHeader(type: hd.type, flags: hd.flags, streamID: hd.stream_id)
      if hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
        let g = frame.pointee.goaway
        header.goawayCode = g.error_code
        header.goawayDebug = g.opaque_data.map { String(decoding: UnsafeBufferPointer(start: $0, count: g.opaque_data_len), as: UTF8.self) } ?? ""
      }
      withConnection(ud) { $0.frameReceived(header) }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(table) {
      _, _, streamID, data, len, ud in
      guard let data else { return 0 }
      withConnection(ud) { $0.dataReceived(streamID: streamID, UnsafeRawBufferPointer(start: data, count: len)) }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(table) { _, frame, ud in
      guard let frame else { return 0 }
      let hd = frame.pointee.hd
      withConnection(ud) { $0.frameSent(.init(type: hd.type, flags: hd.flags, streamID: hd.stream_id)) }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(table) { _, streamID, errorCode, ud in
      withConnection(ud) { $0.streamClosed(streamID: streamID, errorCode: errorCode) }
      return 0
    }
  }
}

/// Runs `body` on the call bound to `streamID` (HTTP2Session.bind), without retaining it: the
/// connection holds its calls while they are bound, and a header callback ends none.
@inline(__always)
private func withCall(_ session: OpaquePointer?, _ streamID: Int32, _ body: (Call) -> Void) {
  guard let session, let p = nghttp2_session_get_stream_user_data(session, streamID) else { return }
  Unmanaged<Call>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
}

/// Runs `body` on the session's connection without retaining it: nghttp2 calls back only from
/// inside the connection's own `receive`/`flush`, whose caller holds it.
@inline(__always)
private func withConnection(_ ud: UnsafeMutableRawPointer?, _ body: (HTTP2Connection) -> Void) {
  guard let ud else { return }
  Unmanaged<HTTP2Connection>.fromOpaque(ud)._withUnsafeGuaranteedRef(body)
}
