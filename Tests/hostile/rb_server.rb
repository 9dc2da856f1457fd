# frozen_string_literal: true

# The Ruby host the hostile-peer tests attack: a SwiftGRPC::Server (the gem, on the ffi gem)
# with the opaque-bytes methods of py_server.py:
#
#   Unary         echo
#   ServerStream  request "N:SIZE" -> N messages of SIZE bytes, yielded one by one
#   Meta          the request's "x-name" metadata value (the bytes the handler saw)
#   Stats         "sent=N": messages ServerStream's handlers have produced
#
# Cancellations seen by a handler are printed to stderr as "<now ms> CANCELLED ServerStream".
# Prints "listening on PORT"; serves until stdin closes.
$LOAD_PATH.unshift(File.expand_path("../../bindings/ruby/lib", __dir__))
require "swiftgrpc"

produced = 0
lock = Mutex.new
trace = lambda do |line|
  $stderr.puts "#{Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)} #{line}"
  $stderr.flush
end

server = SwiftGRPC::Server.new(pool_size: 16)
server.handle("/swiftgrpc.test.Test/Unary", :unary) { |req, _call| req }
server.handle("/swiftgrpc.test.Test/ServerStream", :server_streaming) do |req, call, &write|
  count, size = req.split(":").map(&:to_i)
  body = "x" * (size.zero? ? 8 : size)
  call.on_cancel { trace.call("CANCELLED ServerStream") }
  count.times do
    lock.synchronize { produced += 1 }
    write.call(body)
  end
  nil
end
server.handle("/swiftgrpc.test.Test/Meta", :unary) { |_req, call| (call.metadata["x-name"] || "").b }
server.handle("/swiftgrpc.test.Test/Stats", :unary) { |_req, _call| "sent=#{lock.synchronize { produced }}" }
port = server.add_http2_port("127.0.0.1:0")
server.start
puts "listening on #{port}"
$stdout.flush
$stdin.read
server.stop(0)
