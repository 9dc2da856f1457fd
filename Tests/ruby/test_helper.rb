# frozen_string_literal: true

# Shared by the Ruby tests: generates the test service from Tests/python/protos/svc.proto with
# grpc_tools_ruby_protoc (the grpc gem's generator, so the generated GRPC::GenericService class
# is what both servers serve), loads the grpc gem and swiftgrpc, and starts one server of each.
require_relative "generated"
$LOAD_PATH.unshift __dir__
require "timeout"
require "json"
require "grpc"
require "svc_services_pb"
require "swiftgrpc"
require "servicer"

Msg = Swiftgrpc::Pytest::Msg
SwiftStub = SwiftGRPC::ClientStub.for(Swiftgrpc::Pytest::Svc::Service)

# The servers every test file shares: the grpc gem's and ours, serving the same servicer.
module Servers
  class << self
    def grpc_port
      @grpc_port ||= begin
        s = GRPC::RpcServer.new(pool_size: 80)
        port = s.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
        s.handle(TestServicer)
        Thread.new { s.run }
        s.wait_till_running(10) or abort "the grpc gem server did not start"
        @grpc = s
        Minitest.after_run { s.stop }
        port
      end
    end

    def swift_port
      @swift_port ||= begin
        s = SwiftGRPC::Server.new(pool_size: 80)
        s.handle(TestServicer)
        port = s.add_http2_port("127.0.0.1:0")
        s.start
        @swift = s
        port
      end
    end

    def port(kind)
      kind == :grpc ? grpc_port : swift_port
    end
  end
end

# Client helpers for a test matrix row.
module ClientHelpers
  def stub_for(server, client, **kw)
    target = "127.0.0.1:#{Servers.port(server)}"
    if client == :grpc
      Swiftgrpc::Pytest::Svc::Stub.new(target, :this_channel_is_insecure, **kw)
    else
      SwiftStub.new(target, **kw)
    end
  end

  def error_class(client)
    client == :grpc ? GRPC::BadStatus : SwiftGRPC::Error
  end

  # Waits (an event, not a sleep) for the servicer to record `key`.
  def wait_log(key, secs = 10)
    TestServicer.wait(key, secs) or flunk "the handler never recorded #{key}"
  end
end

# Records the wire between a client and a server (Tests/python/wiretap.py, a relay that decodes
# every frame).
module WireTap
  # Yields the relay's port, in front of the server on `port`; returns what crossed, per
  # direction ("request", "response": headers, messages, goaways) and "connections".
  def wiretap(port)
    io = IO.popen(["python3", File.join(ROOT, "Tests/python/wiretap.py"), port.to_s], "r+")
    yield Integer(io.gets)
    io.close_write
    JSON.parse(io.read)
  ensure
    io&.close
  end
end
