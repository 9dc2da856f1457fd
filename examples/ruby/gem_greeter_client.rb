# frozen_string_literal: true

# A Greeter client written for the grpc gem, unchanged: run it on swiftgrpc with
#   ruby -rswiftgrpc/grpc gem_greeter_client.rb TARGET
# (or change its `require "grpc"` to `require "swiftgrpc/grpc"`); without -r it runs on the gem.
# Prints the reply and who served it, then the error an empty name gets, then the one a wrong
# API key gets.
$LOAD_PATH.unshift(__dir__)
require "grpc"
require "helloworld_services_pb"

# Adds the API key to every call's metadata.
class ApiKey < GRPC::ClientInterceptor
  def initialize(key)
    super()
    @key = key
  end

  def request_response(request: nil, call: nil, method: nil, metadata: nil)
    metadata["x-api-key"] = @key
    yield
  end
end

target = ARGV.fetch(0, "localhost:50051")
stub = Helloworld::Greeter::Stub.new(target, :this_channel_is_insecure, interceptors: [ApiKey.new("secret")])
op = stub.say_hello(Helloworld::HelloRequest.new(name: "Ruby"), deadline: Time.now + 5, return_op: true)
reply = op.execute
puts "#{reply.message} (served by #{op.metadata['x-greeter']})"
begin
  stub.say_hello(Helloworld::HelloRequest.new(name: ""))
rescue GRPC::InvalidArgument => e
  puts "INVALID_ARGUMENT: #{e.details} (#{e.metadata['x-field']})"
end
begin
  Helloworld::Greeter::Stub.new(target, :this_channel_is_insecure).say_hello(Helloworld::HelloRequest.new(name: "x"))
rescue GRPC::BadStatus => e
  puts "#{e.code == GRPC::Core::StatusCodes::UNAUTHENTICATED ? 'UNAUTHENTICATED' : e.code}: #{e.details}"
end
