# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"
require "socket"

# Process exit, garbage collection and library discovery, in child processes where the
# process itself is what is tested.
class LifecycleTest < Minitest::Test
  LIB = File.join(ROOT, "bindings/ruby/lib")

  # Runs `code` in a child Ruby; returns [stdout+stderr, status]; fails after `limit` seconds.
  def ruby(code, env: {}, limit: 30)
    out = +""
    status = nil
    Open3.popen2e({ "SWIFT_BACKTRACE" => "enable=no" }.merge(env), RbConfig.ruby, "-I", LIB,
                  "-I", GEN_DIR, "-I", __dir__, "-e", code) do |stdin, io, thr|
      stdin.close
      reader = Thread.new { out << io.read }
      unless thr.join(limit)
        Process.kill("KILL", thr.pid)
        flunk "the child did not exit within #{limit} s:\n#{out}"
      end
      reader.join
      status = thr.value
    end
    [out, status]
  end

  def test_exit_while_serving_under_load_from_grpc_gem_clients
    # The server process exits (no stop, no cleanup) while the grpc gem's clients, here in the
    # test process, keep calling it. (The grpc gem itself, serving and calling in one process,
    # hangs at exit in this situation: grpc-core's completion_queue assertion.)
    code = <<~RUBY
      require "swiftgrpc"
      s = SwiftGRPC::Server.new
      s.handle("/e.E/U", :unary) { |req, _| req }
      s.handle("/e.E/S", :server_streaming) { |req, call| loop { call.write(req) } }
      puts s.add_http2_port("127.0.0.1:0")
      s.start
      $stdout.flush
      $stdin.gets # the parent's clients are all running: exit in their middle
      puts "exiting under load"
    RUBY
    raw = ->(x) { x }
    Open3.popen2e({ "SWIFT_BACKTRACE" => "enable=no" }, RbConfig.ruby, "-I", LIB, "-e", code) do |stdin, io, thr|
      port = Integer(io.gets)
      going = Queue.new
      clients = 8.times.map do |i|
        Thread.new do
          c = GRPC::ClientStub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
          n = 0
          loop do
            i.even? ? c.request_response("/e.E/U", "x", raw, raw) : c.server_streamer("/e.E/S", "y", raw, raw).first(50)
            going << true if (n += 1) == 20
          end
        rescue GRPC::BadStatus, GRPC::Core::CallError # the gem's client, its server gone mid-stream
          :ended
        end
      end
      8.times { going.pop }
      stdin.puts "go"
      stdin.close
      flunk "the server process did not exit" unless thr.join(20)
      out = io.read
      assert thr.value.success?, out
      assert_includes out, "exiting under load"
      clients.each { |t| assert_equal :ended, t.join(20)&.value }
    end
  end

  def test_exit_with_client_streams_in_flight_and_no_cleanup
    out, status = ruby(<<~RUBY)
      require "swiftgrpc"
      s = SwiftGRPC::Server.new
      s.handle("/e.E/B", :bidi_streaming) { |reqs, _| reqs }
      s.handle("/e.E/U", :unary) { |req, call| sleep 60; req }
      port = s.add_http2_port("127.0.0.1:0")
      s.start
      ch = SwiftGRPC::Channel.new("127.0.0.1:\#{port}")
      call = ch.bidi_call("/e.E/B")
      call.write("a")
      puts call.read
      Thread.new { ch.request_response("/e.E/U", "blocked") }
      Thread.new { SwiftGRPC::Channel.new("127.0.0.1:\#{port}").bidi_streamer("/e.E/B", loop.lazy.map { "z" }).each { } }
      sleep 0.2 # let the background calls get going: what is tested is exiting in their middle
    RUBY
    assert status.success?, out
    assert_includes out.lines.map(&:strip), "a"
  end

  def test_server_garbage_collected_stops_listening
    port = nil
    echo = ->(req, _call) { req } # made outside: a block made next to `s` would capture it
    start = lambda do
      s = SwiftGRPC::Server.new
      s.handle("/e.E/U", :unary, echo)
      port = s.add_http2_port("127.0.0.1:0")
      s.start
      nil
    end
    Thread.new(&start).join # made on a thread that is gone: no stack slot keeps it alive
    assert_equal "hi", SwiftGRPC::Channel.new("127.0.0.1:#{port}").request_response("/e.E/U", "hi")
    refused = false
    50.times do
      GC.start(full_mark: true, immediate_sweep: true)
      begin
        TCPSocket.new("127.0.0.1", port).close
        Thread.pass
      rescue Errno::ECONNREFUSED
        refused = true
        break
      end
    end
    assert refused, "a collected server should stop listening"
  end

  def test_channel_garbage_collected_cancels_its_calls
    ended = Queue.new
    started = Queue.new
    s = SwiftGRPC::Server.new
    s.handle("/e.E/S", :server_streaming) do |_req, call|
      call.on_cancel { ended << :cancelled }
      started << true
      loop do
        call.write("t")
        sleep 0.01
      end
    end
    port = s.add_http2_port("127.0.0.1:0")
    s.start
    Thread.new do # on a thread that is gone: no stack slot keeps the channel alive
      st = SwiftGRPC::Channel.new("127.0.0.1:#{port}").server_streamer("/e.E/S", "")
      st.next
      nil
    end.join
    started.pop
    got = nil
    50.times do
      GC.start(full_mark: true, immediate_sweep: true)
      got = begin
        ended.pop(true)
      rescue ThreadError
        Thread.pass
        nil
      end
      break if got
    end
    assert_equal :cancelled, got
  ensure
    s&.stop
  end

  def test_fork_child_makes_its_own_objects_and_the_parent_goes_on
    # Puma / Unicorn style: the parent used swiftgrpc (a server and a channel), then forks; the
    # child's copies are refused, it makes its own channel and calls the parent's server (and a
    # grpc gem client in the child calls too); the parent's objects keep working.
    code = <<~RUBY
      require "swiftgrpc"
      $stdout.sync = true
      s = SwiftGRPC::Server.new
      s.handle("/f.F/Pid", :unary) { |req, _| "\#{req}@\#{Process.pid}" }
      port = s.add_http2_port("127.0.0.1:0")
      s.start
      ch = SwiftGRPC::Channel.new("127.0.0.1:\#{port}")
      raise "before" unless ch.request_response("/f.F/Pid", "a") == "a@\#{Process.pid}"
      parent = Process.pid
      pid = fork do
        begin
          ch.request_response("/f.F/Pid", "x")
          puts "child: old channel answered"
        rescue SwiftGRPC::Error, SwiftGRPC::ClosedError, SwiftGRPC::NativeError => e
          puts "child: old channel refused: \#{e.message[/fork/]}"
        end
        own = SwiftGRPC::Channel.new("127.0.0.1:\#{port}")
        puts "child: \#{own.request_response("/f.F/Pid", "c") == "c@\#{parent}"}"
        own.close
        exit!(0)
      end
      Process.wait(pid)
      puts "child exit \#{$?.exitstatus}"
      puts "parent: \#{ch.request_response("/f.F/Pid", "p") == "p@\#{Process.pid}"}"
      s.stop
    RUBY
    out, status = ruby(code, limit: 60)
    assert status.success?, out
    assert_includes out, "child: old channel refused: fork"
    assert_includes out, "child: true"
    assert_includes out, "child exit 0"
    assert_includes out, "parent: true"
  end

  def test_forked_workers_serve_and_call_with_another_librarys_fork_hook
    # Unicorn / Puma cluster style: the master used swiftgrpc, another library hooks
    # Process._fork too (as ActiveSupport's ForkTracker does), and two workers are forked; each
    # starts its own server and channel, the master calls every worker's server and each
    # worker calls the master's.
    code = <<~RUBY
      module OtherHook
        def _fork
          pid = super
          $other_hook_ran = true if pid.zero?
          pid
        end
      end
      Process.singleton_class.prepend(OtherHook)
      require "swiftgrpc"
      $stdout.sync = true
      pid_of = ->(req, _) { "\#{req}@\#{Process.pid}" }
      s = SwiftGRPC::Server.new
      s.handle("/f.F/Pid", :unary, pid_of)
      port = s.add_http2_port("127.0.0.1:0")
      s.start
      master = Process.pid
      raise "before" unless SwiftGRPC::Channel.new("127.0.0.1:\#{port}").request_response("/f.F/Pid", "m") == "m@\#{master}"
      workers = 2.times.map do
        r, w = IO.pipe
        pid = fork do
          r.close
          ws = SwiftGRPC::Server.new
          ws.handle("/f.F/Pid", :unary, pid_of)
          wport = ws.add_http2_port("127.0.0.1:0")
          ws.start
          ok = SwiftGRPC::Channel.new("127.0.0.1:\#{port}").request_response("/f.F/Pid", "w") == "w@\#{master}"
          w.puts "\#{wport} \#{ok} \#{$other_hook_ran.inspect}"
          w.close
          ws.wait_till_terminated # until the master's TERM (trapped below)
        end
        w.close
        [pid, r]
      end
      workers.each do |pid, r|
        wport, ok, hook = r.gets.split
        answer = SwiftGRPC::Channel.new("127.0.0.1:\#{wport}").request_response("/f.F/Pid", "x")
        puts "worker answered: \#{answer == "x@\#{pid}"}, called the master: \#{ok}, other hook: \#{hook}"
        Process.kill("KILL", pid)
        Process.wait(pid)
      end
      puts "master: \#{SwiftGRPC::Channel.new("127.0.0.1:\#{port}").request_response("/f.F/Pid", "p") == "p@\#{master}"}"
      s.stop
    RUBY
    out, status = ruby(code, limit: 60)
    assert status.success?, out
    assert_equal 2, out.scan("worker answered: true, called the master: true, other hook: true").size, out
    assert_includes out, "master: true"
  end

  def test_a_fork_that_bypasses_process_fork_hooks_is_seen_by_pid
    # Process.daemon forks without calling Process._fork: the daemon finds the parent's
    # runtime by the process id, and starts its own.
    code = <<~RUBY
      require "swiftgrpc"
      $stdout.sync = true
      old = SwiftGRPC::Channel.new("127.0.0.1:1")
      Process.daemon(true, true) # the original process exits here; this is the daemon
      begin
        old.request_response("/f.F/Pid", "x", timeout: 1)
        puts "daemon: old channel answered"
      rescue SwiftGRPC::ClosedError => e
        puts "daemon: old channel refused: \#{e.message[/fork/]}"
      end
      s = SwiftGRPC::Server.new
      s.handle("/f.F/Pid", :unary) { |req, _| "\#{req}@\#{Process.pid}" }
      port = s.add_http2_port("127.0.0.1:0")
      s.start
      puts "daemon: \#{SwiftGRPC::Channel.new("127.0.0.1:\#{port}").request_response("/f.F/Pid", "d") == "d@\#{Process.pid}"}"
      s.stop
    RUBY
    out, status = ruby(code, limit: 60) # the output pipe stays open until the daemon exits
    assert status.success?, out
    assert_includes out, "daemon: old channel refused: fork"
    assert_includes out, "daemon: true"
  end

  def test_run_till_terminated_starts_and_signals_are_taken_as_the_gem_takes_them
    code = <<~RUBY
      require "swiftgrpc"
      $stdout.sync = true
      begin
        SwiftGRPC::Server.new.run_till_terminated_or_interrupted(["SIGNOPE"])
      rescue ArgumentError => e
        puts "refused: \#{e.message}"
      end
      s = SwiftGRPC::Server.new
      s.handle("/r.R/U", :unary) { |req, _| req }
      port = s.add_http2_port("127.0.0.1:0")
      t = Thread.new do # as the gem's: run_till_terminated starts the server
        ch = SwiftGRPC::Channel.new("127.0.0.1:\#{port}")
        puts "called: \#{ch.request_response("/r.R/U", "x", timeout: 10, wait_for_ready: true)}"
        s.stop
      end
      s.run_till_terminated
      t.join
      s2 = SwiftGRPC::Server.new
      s2.handle("/r.R/U", :unary) { |req, _| req }
      port2 = s2.add_http2_port("127.0.0.1:0")
      Thread.new do # answered: started, so the traps are set
        SwiftGRPC::Channel.new("127.0.0.1:\#{port2}").request_response("/r.R/U", "y", timeout: 10, wait_for_ready: true)
        Process.kill("TERM", Process.pid)
      end
      s2.run_till_terminated_or_interrupted([1, "int", "SIGTERM"])
      puts "stopped: \#{!s2.running?}"
    RUBY
    out, status = ruby(code, limit: 60)
    assert status.success?, out
    assert_includes out, "refused: \"SIGNOPE\" is not a valid signal"
    assert_includes out, "called: x"
    assert_includes out, "stopped: true"
  end

  def test_bad_library_path_is_a_clear_load_error
    out, status = ruby(<<~RUBY, env: { "SWIFTGRPC_LIBRARY" => "/nonexistent/libswiftgrpc.so" })
      begin
        require "swiftgrpc"
      rescue LoadError => e
        puts "\#{e.class}: \#{e.message}"
        exit 3
      end
    RUBY
    assert_equal 3, status.exitstatus, out
    assert_includes out, "SwiftGRPC::LibraryNotFound"
    assert_includes out, "/nonexistent/libswiftgrpc.so"
  end

  def test_wrong_library_version_is_refused
    out, status = ruby(<<~RUBY)
      SwiftGRPC = Module.new
      SwiftGRPC::ABI_VERSION_NUMBER = 1
      SwiftGRPC::VERSION = "0"
      $LOADED_FEATURES << File.join("#{LIB}", "swiftgrpc/version.rb")
      begin
        require "swiftgrpc/native"
      rescue LoadError => e
        puts e.message
        exit 3
      end
    RUBY
    assert_equal 3, status.exitstatus, out
    assert_includes out, "needs 1"
  end

  def test_exit_right_after_a_cancel_never_crashes
    # A client that cancels a call on a "dns" target (resolved on a library thread) and exits
    # at once: the library's threads end with the runtime, before the process is torn down (a
    # detached resolver thread used to segfault here in 13 of 60 runs).
    server = TCPServer.new("127.0.0.1", 0) # a plain listener is peer enough: the call is cancelled
    port = server.addr[1]
    20.times do |i|
      out, status = ruby(<<~RUBY)
        require "swiftgrpc"
        ch = SwiftGRPC::Channel.new("dns:///localhost:#{port}")
        stream = ch.server_streamer("/e.E/S", "x", timeout: 10)
        stream.cancel if #{i}.odd?
        ch.close
        puts "exiting"
      RUBY
      assert status.success? && out.include?("exiting"), "run #{i}: #{status.inspect}\n#{out}"
    end
  ensure
    server&.close
  end
end
