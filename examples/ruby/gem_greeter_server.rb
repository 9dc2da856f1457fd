# frozen_string_literal: true

# A Greeter server written for the grpc gem, unchanged: run it on swiftgrpc with
#   ruby -rswiftgrpc/grpc gem_greeter_server.rb PORT
# (or change its `require "grpc"` to `require "swiftgrpc/grpc"`); without -r it runs on the gem.
# An interceptor checks an API key; an empty name is INVALID_ARGUMENT; the reply carries initial
# metadata. Prints "listening on PORT"; stops on SIGINT, SIGTERM or SIGHUP.
$LOAD_PATH.unshift(__dir__)
require "grpc"
require "helloworld_services_pb"

# Refuses calls without the right x-api-key.
class ApiKeyInterceptor < GRPC::ServerInterceptor
  def request_response(request: nil, call: nil, method: nil)
    raise GRPC::Unauthenticated, "missing or wrong x-api-key" unless call.metadata["x-api-key"] == "secret"

    yield
  end
end

class Greeter < Helloworld::Greeter::Service
  def say_hello(request, call)
    raise GRPC::InvalidArgument.new("name must not be empty", { "x-field" => "name" }) if request.name.empty?

    call.metadata_to_send["x-greeter"] = GRPC.const_defined?(:SWIFTGRPC) ? "swiftgrpc" : "the grpc gem"
    Helloworld::HelloReply.new(message: "Hello #{request.name}")
  end
end

server = GRPC::RpcServer.new(pool_size: 4, interceptors: [ApiKeyInterceptor.new])
port = server.add_http2_port("127.0.0.1:#{ARGV.fetch(0, 50_051)}", :this_port_is_insecure)
server.handle(Greeter)
puts "listening on #{port}"
$stdout.flush
server.run_till_terminated_or_interrupted([1, "int", "SIGTERM"])
