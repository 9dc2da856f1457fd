# frozen_string_literal: true

# The Ruby echo server for the h2load benchmarks: one handler class, served by swiftgrpc or by
# the grpc gem. Messages are raw bytes (the 17-byte frame h2load sends carries 12 bytes that are
# not protobuf), through the same marshal/unmarshal code on both servers.
#   ruby bench/ruby/echo_server.rb swiftgrpc|grpc [POOL_SIZE]
# Prints "listening on PORT"; serves until SIGTERM/SIGINT. The grpc gem's server gets
# max_waiting_requests high enough that it never rejects a call for lack of threads.
$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
impl = ARGV.fetch(0)
pool = Integer(ARGV.fetch(1, "32"))
require "grpc" if impl == "grpc"
require "swiftgrpc" if impl == "swiftgrpc"

# Bytes as a message class: encode/decode are identities.
class RawBytes < String
  def self.encode(msg) = msg
  def self.decode(bytes) = new(bytes)
end

generic = impl == "grpc" ? GRPC::GenericService : SwiftGRPC::GenericService
echo = Class.new do
  include generic
  self.marshal_class_method = :encode
  self.unmarshal_class_method = :decode
  self.service_name = "swiftgrpc.examples.Echo"
  rpc :Get, RawBytes, RawBytes

  def get(request, _call) = request
end

if impl == "grpc"
  server = GRPC::RpcServer.new(pool_size: pool, max_waiting_requests: 100_000)
  port = server.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
  server.handle(echo)
  Thread.new { server.wait_till_running; puts "listening on #{port}"; $stdout.flush }
  server.run_till_terminated_or_interrupted(%w[INT TERM])
else
  server = SwiftGRPC::Server.new(pool_size: pool)
  server.handle(echo)
  port = server.add_http2_port("127.0.0.1:0")
  server.start
  puts "listening on #{port}"
  $stdout.flush
  server.run_till_terminated_or_interrupted(%w[INT TERM], 0)
end
