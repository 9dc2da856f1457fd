# frozen_string_literal: true

# TLS, mutual TLS and call credentials through the Ruby binding, with the grpc gem on the other
# side (and on the same side, to compare): every case runs for each server (the gem's, ours)
# and each client (the gem's, ours), over real sockets.
require_relative "test_helper"

PKI = Dir.mktmpdir("swiftgrpc-ruby-pki")
Minitest.after_run { FileUtils.remove_entry(PKI) }
system("python3", File.join(ROOT, "Tests/tls/certs.py"), PKI, out: File::NULL) or abort "certs.py failed"

def pem(name)
  File.binread(File.join(PKI, name))
end

class TestTLS < Minitest::Test
  IMPLS = %i[grpc swift].freeze

  def server_creds(impl, mutual: false)
    roots = mutual ? pem("ca.pem") : nil
    pairs = [{ private_key: pem("server.key"), cert_chain: pem("server.pem") }]
    impl == :grpc ? GRPC::Core::ServerCredentials.new(roots, pairs, mutual) : SwiftGRPC::ServerCredentials.new(roots, pairs, mutual)
  end

  def with_server(impl, creds)
    if impl == :grpc
      s = GRPC::RpcServer.new(pool_size: 8)
      port = s.add_http2_port("localhost:0", creds)
      s.handle(TestServicer)
      t = Thread.new { s.run }
      s.wait_till_running(10) or flunk "gem server did not start"
      begin
        yield port
      ensure
        s.stop
        t.join
      end
    else
      s = SwiftGRPC::Server.new(pool_size: 8)
      s.handle(TestServicer)
      port = s.add_http2_port("localhost:0", creds)
      s.start
      begin
        yield port
      ensure
        s.stop
      end
    end
  end

  def channel_creds(impl, client: nil, roots: "ca.pem")
    args = [pem(roots), client && pem("#{client}.key"), client && pem("#{client}.pem")]
    impl == :grpc ? GRPC::Core::ChannelCredentials.new(*args) : SwiftGRPC::ChannelCredentials.new(*args)
  end

  def stub(impl, port, creds, **kw)
    klass = impl == :grpc ? Swiftgrpc::Pytest::Svc::Stub : SwiftStub
    klass.new("localhost:#{port}", creds, **kw)
  end

  def call_creds(impl, &blk)
    impl == :grpc ? GRPC::Core::CallCredentials.new(blk) : SwiftGRPC::CallCredentials.new(blk)
  end

  def error_class(impl)
    impl == :grpc ? GRPC::BadStatus : SwiftGRPC::Error
  end

  IMPLS.each do |server|
    IMPLS.each do |client|
      define_method("test_tls_#{server}_server_#{client}_client") do
        with_server(server, server_creds(server)) do |port|
          s = stub(client, port, channel_creds(client))
          assert_equal "tls", s.unary(Msg.new(text: "echo", data: "tls")).data
          assert_equal %w[0 1 2], s.server_stream(Msg.new(n: 3)).map(&:text)
          assert_equal "a,b", s.client_stream([Msg.new(text: "a"), Msg.new(text: "b")]).text
          assert_equal %w[X Y], s.bidi([Msg.new(text: "x"), Msg.new(text: "y")]).map(&:text)
          assert_equal "", s.unary(Msg.new(text: "auth")).data # no client certificate asked for
        end
      end

      define_method("test_mutual_tls_#{server}_server_#{client}_client") do
        with_server(server, server_creds(server, mutual: true)) do |port|
          s = stub(client, port, channel_creds(client, client: "client"))
          assert_equal pem("client.pem"), s.unary(Msg.new(text: "auth")).data # the gem's peer_cert
          %w[untrusted-client].push(nil).each do |who|
            bad = stub(client, port, channel_creds(client, client: who))
            e = assert_raises(error_class(client)) { bad.unary(Msg.new(text: "echo"), deadline: Time.now + 5) }
            assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, e.code, "client #{who.inspect}"
          end
        end
      end

      define_method("test_call_credentials_#{server}_server_#{client}_client") do
        with_server(server, server_creds(server)) do |port|
          seen = Queue.new
          creds = channel_creds(client).compose(call_creds(client) do |ctx|
            seen << ctx
            { "authorization" => "Bearer channel-token", "x-plugin" => "from-proc" }
          end)
          s = stub(client, port, creds)
          md = eval(s.unary(Msg.new(text: "auth")).text)
          assert_equal [["authorization", "Bearer channel-token"], ["x-plugin", "from-proc"]], md
          ctx = seen.pop
          assert_equal "https://localhost:#{port}/swiftgrpc.pytest.Svc", ctx[:jwt_aud_uri]
          per_call = call_creds(client) { { "x-per-call" => "1" } }
          md = eval(s.unary(Msg.new(text: "auth"), credentials: per_call).text)
          assert_includes md, ["x-per-call", "1"]
        end
      end
    end
  end

  # The message a failing proc gives the call is the gem's.
  def test_a_raising_proc_fails_the_call_as_the_gem_does
    with_server(:swift, server_creds(:swift)) do |port|
      got = IMPLS.map do |client|
        creds = channel_creds(client).compose(call_creds(client) { raise ArgumentError, "no token" })
        e = assert_raises(error_class(client)) { stub(client, port, creds).unary(Msg.new(text: "echo")) }
        [e.code, e.details]
      end
      assert_equal [GRPC::Core::StatusCodes::UNAVAILABLE,
                    "Getting metadata from plugin failed with error: #<ArgumentError: no token>"], got[1]
      assert_equal got[0], got[1]
      # The server goes on.
      assert_equal "ok", stub(:swift, port, channel_creds(:swift)).unary(Msg.new(text: "echo", data: "ok")).data
    end
  end

  def test_call_credentials_are_never_sent_in_plaintext
    s = SwiftStub.new("127.0.0.1:#{Servers.swift_port}")
    e = assert_raises(SwiftGRPC::Error) do
      s.unary(Msg.new(text: "auth"), credentials: SwiftGRPC::CallCredentials.access_token("secret"))
    end
    assert_equal GRPC::Core::StatusCodes::UNAUTHENTICATED, e.code
    assert_match(/sufficient security level/, e.details)
  end

  def test_a_server_name_override_from_channel_args
    pairs = [{ private_key: pem("wronghost.key"), cert_chain: pem("wronghost.pem") }]
    with_server(:grpc, GRPC::Core::ServerCredentials.new(nil, pairs, false)) do |port|
      e = assert_raises(SwiftGRPC::Error) { stub(:swift, port, channel_creds(:swift)).unary(Msg.new(text: "echo")) }
      assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, e.code
      assert_match(/hostname mismatch/, e.details)
      s = stub(:swift, port, channel_creds(:swift), channel_args: { "grpc.ssl_target_name_override" => "wrong.example" })
      assert_equal "ok", s.unary(Msg.new(text: "echo", data: "ok")).data
    end
  end

  def test_bad_credentials_are_refused_clearly
    assert_raises(ArgumentError) { SwiftGRPC::ServerCredentials.new(nil, [], false) }
    assert_raises(ArgumentError) { SwiftGRPC::ServerCredentials.new(nil, [{ private_key: pem("server.key"), cert_chain: pem("server.pem") }], true) }
    e = assert_raises(ArgumentError) { SwiftGRPC::ServerCredentials.new(nil, [{ private_key: "junk", cert_chain: "junk" }]) }
    assert_match(/PEM/, e.message)
    assert_raises(ArgumentError) { SwiftGRPC::ServerCredentials.new(nil, [{ private_key: pem("client.key"), cert_chain: pem("server.pem") }]) }
    assert_raises(ArgumentError) { SwiftGRPC::ServerCredentials.new(nil, [{ cert_chain: pem("server.pem") }]) }
    assert_raises(TypeError) { SwiftGRPC::ServerCredentials.new(nil, [{ private_key: 1, cert_chain: 2 }]) }
    assert_raises(ArgumentError) { SwiftGRPC::ChannelCredentials.new("junk") }
    assert_raises(ArgumentError) { SwiftGRPC::ChannelCredentials.new(pem("ca.pem"), pem("client.key")) }
    assert_raises(TypeError) { SwiftGRPC::CallCredentials.new("not a proc") }
    assert_raises(ArgumentError) { SwiftGRPC::CallCredentials.access_token("line\nbreak") }
    assert_raises(TypeError) { SwiftGRPC::CallCredentials.access_token("t").compose("x") }
    assert_raises(TypeError) { SwiftGRPC::Server.new.add_http2_port("127.0.0.1:0", :tls) }
    assert_raises(TypeError) { SwiftGRPC::Server.new.add_http2_port("127.0.0.1:0", server_creds(:grpc)) }
    assert_raises(TypeError) { SwiftStub.new("localhost:1", channel_creds(:grpc)) }
    e = assert_raises(ArgumentError) { SwiftStub.new("localhost:1", :this_channel_is_insecure, channel_args: { "grpc.lb_call_x" => 1 }) }
    assert_match(/grpc.lb_call_x/, e.message)
    s = SwiftStub.new("localhost:1", channel_creds(:swift))
    assert_raises(TypeError) { s.unary(Msg.new(text: "echo"), credentials: "token") }
  end
end
