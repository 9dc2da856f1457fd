// swift-tools-version:6.0
import PackageDescription

// libswiftgrpc.so: a gRPC runtime in Swift on libnghttp2, exported through a C ABI.
// It links no Swift package and no Foundation: the Swift standard library, libnghttp2, OpenSSL,
// zlib and libc.
// Release builds drop Swift's run-time exclusivity checks: they were ~9 % of the instructions a
// server runs per call (callgrind, bench_server --inline). Debug builds, which `swift test` runs
// the core's unit tests in, keep them, so an overlapping access still traps there.
let releaseSettings: [SwiftSetting] = [
  .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
  name: "swiftgrpc",
  products: [
    .library(name: "swiftgrpc", type: .dynamic, targets: ["SwiftGRPC"])
  ],
  targets: [
    .systemLibrary(
      name: "CNGHTTP2",
      pkgConfig: "libnghttp2",
      providers: [.apt(["libnghttp2-dev"])]
    ),
    .systemLibrary(
      name: "COpenSSL",
      pkgConfig: "openssl",
      providers: [.apt(["libssl-dev"])]
    ),
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]
    ),
    // Linux calls that Swift's Glibc module does not export (epoll, eventfd, timerfd, accept4).
    .systemLibrary(name: "CLinux"),
    // The public header, include/swiftgrpc.h, seen by the ABI target.
    .systemLibrary(name: "CSwiftGRPCABI"),
    .target(
      name: "SwiftGRPCCore",
      dependencies: ["CNGHTTP2", "COpenSSL", "CZlib", "CLinux"],
      swiftSettings: releaseSettings
    ),
    .target(
      name: "SwiftGRPC",
      dependencies: ["SwiftGRPCCore", "CSwiftGRPCABI"],
      swiftSettings: releaseSettings,
      linkerSettings: [.unsafeFlags(["-static-stdlib"])]
    ),
    .testTarget(
      name: "SwiftGRPCCoreTests",
      dependencies: ["SwiftGRPCCore"]
    ),
  ]
)
