# frozen_string_literal: true

# The Greeter client on swiftgrpc. Usage: ruby greeter_client.rb TARGET [--grpc]
# (--grpc: the grpc gem's client with its generated stub, for comparison).
$LOAD_PATH.unshift(__dir__)
target = ARGV.fetch(0, "localhost:50051")

if ARGV.include?("--grpc")
  require "grpc"
  require "helloworld_services_pb"
  stub = Helloworld::Greeter::Stub.new(target, :this_channel_is_insecure)
  reply = stub.say_hello(Helloworld::HelloRequest.new(name: "Ruby"),
                         metadata: { "x-caller" => "the grpc gem" }, deadline: Time.now + 5)
else
  require "helloworld_services"
  stub = Helloworld::Greeter::Stub.new(target)
  begin
    reply = stub.say_hello(Helloworld::HelloRequest.new(name: "Ruby"),
                           metadata: { "x-caller" => "swiftgrpc" }, timeout: 5)
  rescue SwiftGRPC::Error => e # one subclass per status: SwiftGRPC::Unavailable, ...
    abort "the call failed: #{e.class}: #{e.details}"
  end
end
puts reply.message
