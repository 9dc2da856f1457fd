# frozen_string_literal: true

# How should library events reach Ruby? The measurement behind SwiftGRPC::Server's choice: the
# same minimal echo, fed three ways (h2load drives it; bench/bench.py runs it):
#   queue           2 Ruby threads pull events with swiftgrpc_queue_next (VM lock released
#                   while waiting) and answer inline: what SwiftGRPC::Server does
#   callback        an FFI::Function host fn; the ffi gem runs it on its callback-dispatch Ruby
#                   thread (the loop thread waits meanwhile), which hands the event to 2 worker
#                   threads through a Thread::Queue; they answer
#   callback-inline the callback answers itself (no hand-off: the best a callback can do)
# Prints "listening on PORT"; serves until SIGTERM.
$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
require "swiftgrpc"
N = SwiftGRPC::Native
mode = ARGV.fetch(0)
METHOD = "/swiftgrpc.examples.Echo/Get"

out = FFI::MemoryPointer.new(:uint64)
N.swiftgrpc_server_create(SwiftGRPC::Runtime.handle, out)
server = out.read_uint64
answer = ->(ev) { N.swiftgrpc_host_complete(server, ev.token, ev.message, ev.message.bytesize, 0, nil, nil, 0) }

case mode
when "queue"
  queue = SwiftGRPC::Runtime.new_queue
  N.swiftgrpc_register_host_queue(server, METHOD, N::KIND_UNARY, queue)
  2.times do
    Thread.new do
      o = FFI::MemoryPointer.new(:pointer)
      loop do
        ev = SwiftGRPC::Runtime.next_event(queue, 250, o)
        next if ev.is_a?(Integer)

        answer.call(ev) if ev.type == N::EVENT_CALL
      end
    end
  end
when "callback", "callback-inline"
  inbox = Thread::Queue.new
  inline = mode == "callback-inline"
  CB = FFI::Function.new(:void, %i[pointer pointer]) do |ptr, _ud|
    ev = SwiftGRPC::Runtime.decode(ptr)
    next unless ev.type == N::EVENT_CALL

    inline ? answer.call(ev) : inbox << ev
  end
  N.swiftgrpc_register_host_fn(server, METHOD, N::KIND_UNARY, CB, nil)
  unless inline
    2.times { Thread.new { loop { answer.call(inbox.pop) } } }
  end
else
  abort "mode: queue | callback | callback-inline"
end
port = FFI::MemoryPointer.new(:int)
N.swiftgrpc_server_listen(server, "127.0.0.1:0", port)
N.swiftgrpc_server_start(server)
puts "listening on #{port.read_int}"
$stdout.flush
r, w = IO.pipe
%w[INT TERM].each { |s| Signal.trap(s) { w.write_nonblock(".") } }
r.read(1)
N.swiftgrpc_server_destroy(server)
