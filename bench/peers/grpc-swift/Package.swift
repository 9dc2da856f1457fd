// swift-tools-version:6.1
// The grpc-swift-2 (SwiftNIO) reference server of the benchmark suite. A package of its own so
// that building libswiftgrpc never builds grpc-swift: bench/run.sh builds it into
// bench/peers/grpc-swift/.build.
import PackageDescription

let package = Package(
  name: "GRPCSwiftEchoServer",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
  ],
  targets: [
    .executableTarget(
      name: "GRPCSwiftEchoServer",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
      ]
    )
  ]
)
