# frozen_string_literal: true

require_relative "lib/swiftgrpc/version"

Gem::Specification.new do |s|
  s.name = "swiftgrpc"
  s.version = SwiftGRPC::VERSION
  s.summary = "gRPC for Ruby on libswiftgrpc (a Swift gRPC runtime on libnghttp2), through ffi"
  s.description = "Serve and call gRPC from Ruby threads through one shared library. Works " \
                  "with google-protobuf messages and with service classes generated for the " \
                  "grpc gem (GRPC::GenericService)."
  s.license = "Apache-2.0"
  s.authors = ["swiftgrpc developers"]
  s.required_ruby_version = ">= 3.0"
  s.platform = Gem::Platform::CURRENT # it carries libswiftgrpc.so when built with build_gem.sh
  s.files = Dir["lib/**/*.rb"] + Dir["lib/swiftgrpc/libswiftgrpc.so"] + ["README.md"]
  s.require_paths = ["lib"]
  s.add_dependency "ffi", "~> 1.15"
  s.homepage = "https://github.com/swiftgrpc/swiftgrpc"
end
