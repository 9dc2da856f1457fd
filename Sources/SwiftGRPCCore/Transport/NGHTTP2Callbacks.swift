import CNGHTTP2

/// The nghttp2 callback table and options, built once. Callbacks capture nothing: they reach
/// their connection through `user_data` and their call through the stream's user data.
struct NGHTTP2Callbacks: @unchecked Sendable {
  // @unchecked: the pointers are created once and never mutated afterwards; nghttp2 only reads.
  let server: OpaquePointer
  let client: OpaquePointer
  let options: OpaquePointer

  static let shared = NGHTTP2Callbacks()

  private init() {
    var cbs: OpaquePointer?
    nghttp2_session_callbacks_new(&cbs)
    var opt: OpaquePointer?
    nghttp2_option_new(&opt)
    nghttp2_option_set_no_auto_window_update(opt, 1)
    // gRPC peers (grpcio among them) send grpc-message with unescaped spaces at its ends, which
    // RFC 9113 forbids; accept them rather than resetting the stream.
    nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(opt, 1)
    server = cbs!
    options = opt!
    client = NGHTTP2Callbacks.makeClientCallbacks()

    nghttp2_session_callbacks_set_on_begin_headers_callback(server) { _, frame, ud in
      guard let frame, let ud else { return 0 }
      if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
        && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
      {
        Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
          .beginCall(streamID: frame.pointee.hd.stream_id)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(server) {
      _, frame, name, namelen, value, valuelen, _, ud in
      guard let frame, let ud, let name, let value,
        frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
      else { return 0 }
      let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
      conn.call(for: frame.pointee.hd.stream_id)?.receivedHeader(
        name: UnsafeBufferPointer(start: name, count: namelen),
        value: UnsafeBufferPointer(start: value, count: valuelen))
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(server) { _, frame, ud in
      guard let frame, let ud else { return 0 }
      let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
      let hd = frame.pointee.hd
      let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      switch Int(hd.type) {
      case Int(NGHTTP2_HEADERS.rawValue):
        guard let call = conn.call(for: hd.stream_id) else { return 0 }
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
          call.headersComplete()
        }
        if endStream { call.requestEnded() }
      case Int(NGHTTP2_DATA.rawValue):
        if endStream { conn.call(for: hd.stream_id)?.requestEnded() }
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(server) {
      _, _, streamID, data, len, ud in
      guard let ud else { return 0 }
      let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
      if let call = conn.call(for: streamID), let data {
        call.receivedData(UnsafeRawBufferPointer(start: data, count: len))
      } else {
        conn.consume(streamID: streamID, bytes: len)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(server) { session, frame, ud in
      guard let frame, let ud else { return 0 }
      let hd = frame.pointee.hd
      if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 && hd.stream_id > 0 {
        let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
        if let call = conn.call(for: hd.stream_id), !call.requestHasEnded {
          // The response is over but the client is still sending: tell it to stop.
          nghttp2_submit_rst_stream(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), hd.stream_id, NGHTTP2_NO_ERROR.rawValue)
        }
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(server) { _, streamID, errorCode, ud in
      guard let ud else { return 0 }
      Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
        .endCall(streamID: streamID, errorCode: errorCode)
      return 0
    }
  }
}

extension NGHTTP2Callbacks {
  static func makeClientCallbacks() -> OpaquePointer {
    var cbs: OpaquePointer?
    nghttp2_session_callbacks_new(&cbs)
    let client = cbs!
    nghttp2_session_callbacks_set_on_header_callback(client) {
      _, frame, name, namelen, value, valuelen, _, ud in
      guard let frame, let name, let value, let conn = clientConnection(ud),
        frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
      else { return 0 }
      let endStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      conn.call(for: frame.pointee.hd.stream_id)?.receivedHeader(
        name: UnsafeBufferPointer(start: name, count: namelen),
        value: UnsafeBufferPointer(start: value, count: valuelen),
        trailer: endStream || frame.pointee.headers.cat == NGHTTP2_HCAT_HEADERS)
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(client) { _, frame, ud in
      guard let frame, let conn = clientConnection(ud) else { return 0 }
      let hd = frame.pointee.hd
      switch Int(hd.type) {
      case Int(NGHTTP2_HEADERS.rawValue):
        let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        conn.call(for: hd.stream_id)?.headersComplete(
          trailer: endStream || frame.pointee.headers.cat == NGHTTP2_HCAT_HEADERS)
      case Int(NGHTTP2_SETTINGS.rawValue):
        if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { conn.settingsReceived() }
      case Int(NGHTTP2_PING.rawValue):
        if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { conn.pingAcked() }
      case Int(NGHTTP2_GOAWAY.rawValue):
        conn.goawayReceived()
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(client) {
      _, _, streamID, data, len, ud in
      guard let conn = clientConnection(ud) else { return 0 }
      if let call = conn.call(for: streamID), let data {
        call.receivedData(UnsafeRawBufferPointer(start: data, count: len))
      } else {
        conn.consume(streamID: streamID, bytes: len)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(client) { _, streamID, errorCode, ud in
      clientConnection(ud)?.streamClosed(streamID: streamID, errorCode: errorCode)
      return 0
    }
    return client
  }
}

private func clientConnection(_ ud: UnsafeMutableRawPointer?) -> ClientConnection? {
  guard let ud else { return nil }
  return Unmanaged<ClientConnection>.fromOpaque(ud).takeUnretainedValue()
}
