# frozen_string_literal: true

# gRPC for Ruby on libswiftgrpc (a Swift gRPC runtime on libnghttp2), through the ffi gem.
#
#   require "swiftgrpc"
#   server = SwiftGRPC::Server.new
#   server.handle(MyGreeter)          # a GRPC::GenericService or SwiftGRPC::GenericService class
#   server.add_http2_port("0.0.0.0:50051")
#   server.start
#
#   stub = SwiftGRPC::ClientStub.for(Helloworld::Greeter::Service).new("localhost:50051")
#   stub.say_hello(Helloworld::HelloRequest.new(name: "you"))
module SwiftGRPC
end

require "io/wait" # IO#wait_readable (a fiber scheduler's io_wait)
require "weakref"

require_relative "swiftgrpc/version"
require_relative "swiftgrpc/native"
require_relative "swiftgrpc/errors"
require_relative "swiftgrpc/compression"
require_relative "swiftgrpc/runtime"
require_relative "swiftgrpc/service"
require_relative "swiftgrpc/interceptors"
require_relative "swiftgrpc/credentials"
require_relative "swiftgrpc/server"
require_relative "swiftgrpc/channel"

module SwiftGRPC
  # @return [String] the loaded library's version
  def self.library_version
    Native.swiftgrpc_version_string
  end

  # @return [String] the path of the loaded library
  def self.library_path
    Native::LIBRARY_PATH
  end
end
