// An echo server on grpc-swift-2 + SwiftNIO (HTTP2ServerTransport.Posix), for the benchmark
// suite: /swiftgrpc.examples.Echo/Get returns the request bytes unchanged (no protobuf, like
// every other server of the suite). Prints "listening on PORT"; runs until killed.
//   GRPCSwiftEchoServer [PORT]
import GRPCCore
import Glibc
import GRPCNIOTransportHTTP2

/// Messages are the raw bytes.
struct RawBytes: MessageSerializer, MessageDeserializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }

  func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
    bytes.withUnsafeBytes { Array($0) }
  }
}

struct EchoService: RegistrableRPCService {
  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    router.registerHandler(
      forMethod: MethodDescriptor(fullyQualifiedService: "swiftgrpc.examples.Echo", method: "Get"),
      deserializer: RawBytes(),
      serializer: RawBytes()
    ) { request, _ in
      StreamingServerResponse { writer in
        for try await message in request.messages { try await writer.write(message) }
        return [:]
      }
    }
  }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let server = GRPCServer(
  transport: .http2NIOPosix(
    address: .ipv4(host: "127.0.0.1", port: port),
    transportSecurity: .plaintext
  ),
  services: [EchoService()]
)
try await withThrowingDiscardingTaskGroup { group in
  group.addTask { try await server.serve() }
  if let address = try await server.listeningAddress, let ipv4 = address.ipv4 {
    print("listening on \(ipv4.port)")
    fflush(nil)  // all streams: stdout may be a file (block-buffered)
  } else {
    print("listening on ? (no IPv4 address)")
    fflush(nil)  // all streams: stdout may be a file (block-buffered)
  }
}
