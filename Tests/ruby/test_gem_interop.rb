# frozen_string_literal: true

# The grpc gem's own interop programs (src/ruby/pb/test/server.rb and client.rb), run straight
# from the installed gem's files, on swiftgrpc with only their `require "grpc"` line swapped for
# `require "swiftgrpc/grpc"` (gem_interop/run_gem_file.rb), against the gem's own programs on
# the other side of the wire, plaintext and TLS (the gem's test certificates).
#
# Every case of client.rb that needs no Google credentials is run. Two of them,
# client_compressed_unary and client_compressed_streaming, probe for a server that checks
# `expect_compressed`, which the gem's server.rb does not implement: they fail between the
# gem's own client and server too (asserted: the same outcome with swiftgrpc on either side).
# So client.rb, on the gem and on swiftgrpc, also runs every case against
# gem_interop/full_interop_server.rb, our TestService written to the interop spec for the gem's
# API on swiftgrpc, which implements them.
require_relative "test_helper"
require "socket"
require "open3"

class TestGemInterop < Minitest::Test
  GEM_TEST_DIR = File.join(Gem::Specification.find_by_name("grpc").full_gem_path, "src/ruby/pb/test")
  RUNNER = File.join(__dir__, "gem_interop/run_gem_file.rb")
  CASES = %w[empty_unary large_unary client_streaming server_streaming ping_pong
             timeout_on_sleeping_server empty_stream cancel_after_begin cancel_after_first_response
             unimplemented_method unimplemented_service status_code_and_message custom_metadata].freeze
  GEM_SERVER_LACKS = %w[client_compressed_unary client_compressed_streaming].freeze
  TLS_CASES = %w[empty_unary large_unary server_streaming ping_pong cancel_after_first_response
                 status_code_and_message custom_metadata].freeze

  # A program of the gem's: [ruby, args] on the gem (`:grpc`) or on swiftgrpc (`:swift`).
  def self.command(impl, program, *args)
    file = File.join(GEM_TEST_DIR, program)
    impl == :swift ? [RbConfig.ruby, RUNNER, file, *args] : [RbConfig.ruby, file, *args]
  end

  def self.free_port
    s = TCPServer.new("127.0.0.1", 0)
    s.addr[1]
  ensure
    s&.close
  end

  # Starts full_interop_server.rb (it announces its port); returns the port.
  def self.full_server_port
    @full_server_port ||= begin
      io = IO.popen([RbConfig.ruby, File.join(__dir__, "gem_interop/full_interop_server.rb"), "0"], "r")
      line = io.gets or raise "full_interop_server.rb did not start"
      Minitest.after_run do
        Process.kill("TERM", io.pid)
        io.close
      end
      Integer(line.strip[/\d+\z/])
    end
  end

  # Starts server.rb; returns [pid, port] once it accepts connections.
  def self.start_server(impl, tls)
    port = free_port
    log = File.open(File.join(GEN_DIR, "server-#{impl}-#{tls}.log"), "w")
    pid = Process.spawn(*command(impl, "server.rb", "--port", port.to_s, "--use_tls", tls.to_s),
                        out: log, err: log)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    begin
      TCPSocket.new("127.0.0.1", port).close
    rescue Errno::ECONNREFUSED
      raise "server.rb (#{impl}) did not start: #{File.read(log.path)}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      raise "server.rb (#{impl}) exited: #{File.read(log.path)}" if Process.waitpid(pid, Process::WNOHANG)

      sleep 0.05 # nothing announces readiness: server.rb logs at WARN level only
      retry
    end
    Minitest.after_run do
      Process.kill("KILL", pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    [pid, port]
  end

  def self.server_port(impl, tls)
    @servers ||= {}
    @servers[[impl, tls]] ||= start_server(impl, tls)[1]
  end

  # Runs client.rb cases (two at a time); returns {case => [ok?, output]}.
  def run_cases(client, server, cases, tls: false)
    port = server == :full ? TestGemInterop.full_server_port : TestGemInterop.server_port(server, tls)
    args = ["--server_host=127.0.0.1", "--server_port=#{port}"]
    args += ["--use_tls=true", "--use_test_ca=true", "--server_host_override=foo.test.google.fr"] if tls
    queue = Queue.new
    cases.each { |c| queue << c }
    results = {}
    lock = Mutex.new
    2.times.map do
      Thread.new do
        while (c = begin
          queue.pop(true)
        rescue ThreadError
          nil
        end)
          out, status = Open3.capture2e(*TestGemInterop.command(client, "client.rb", *args, "--test_case=#{c}"))
          lock.synchronize { results[c] = [status.success? && out.include?("OK: #{c}"), out] }
        end
      end
    end.each(&:join)
    results
  end

  def assert_all_pass(results)
    failed = results.reject { |_, (ok, _)| ok }
    assert failed.empty?, failed.map { |c, (_, out)| "#{c}:\n#{out.lines.last(8).join}" }.join("\n")
    assert_equal results.size, results.count { |_, (ok, _)| ok }
  end

  def test_the_gems_client_against_server_rb_on_swiftgrpc
    assert_all_pass(run_cases(:grpc, :swift, CASES))
  end

  def test_client_rb_on_swiftgrpc_against_the_gems_server
    assert_all_pass(run_cases(:swift, :grpc, CASES))
  end

  def test_client_rb_and_server_rb_both_on_swiftgrpc
    assert_all_pass(run_cases(:swift, :swift, CASES))
  end

  def test_every_case_against_a_server_implementing_them_all
    assert_all_pass(run_cases(:grpc, :full, CASES + GEM_SERVER_LACKS))
    assert_all_pass(run_cases(:swift, :full, CASES + GEM_SERVER_LACKS))
  end

  def test_tls_both_directions_with_the_gems_test_certificates
    assert_all_pass(run_cases(:grpc, :swift, TLS_CASES, tls: true))
    assert_all_pass(run_cases(:swift, :grpc, TLS_CASES, tls: true))
  end

  def test_the_compression_probes_fail_as_they_fail_on_the_gem_alone
    baseline = run_cases(:grpc, :grpc, GEM_SERVER_LACKS)
    ours = run_cases(:swift, :grpc, GEM_SERVER_LACKS).merge(run_cases(:grpc, :swift, GEM_SERVER_LACKS)) { |_, a, b| [a, b] }
    GEM_SERVER_LACKS.each do |c|
      refute baseline[c][0], "#{c} passes between the gem's own client and server: run it as a normal case"
      assert_includes baseline[c][1], "CompressedRequest probe failed"
      ours[c].each do |ok, out|
        refute ok
        assert_includes out, "CompressedRequest probe failed", "#{c} failed otherwise:\n#{out}"
      end
    end
  end
end
