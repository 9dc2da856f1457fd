# frozen_string_literal: true

require "timeout"

module SwiftGRPC
  # The call a server handler is given: what the client sent with it, and the ways to answer
  # beyond the return value. Its methods and their names follow the grpc gem's call views
  # (`metadata`, `deadline`, `peer`, `cancelled?`, `output_metadata`, `send_initial_metadata`,
  # `each_remote_read`).
  class ServerCall
    # Response messages a streaming handler may have in flight (of SWIFTGRPC_MAX_OUTSTANDING_SENDS).
    SEND_WINDOW = 8

    # @return [String] the method path, "/package.Service/Method"
    attr_reader :path
    # @return [Hash{String=>String,Array<String>}] the request metadata (-bin values decoded)
    attr_reader :metadata
    # @return [String] the client's address: "ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "unix:…"
    attr_reader :peer
    # @return [String] the :authority the client called
    attr_reader :authority
    # @return [Array<Array(String, String)>] the connection's auth properties as gRPC names
    #   them ("transport_security_type", "x509_common_name", ...), [name, value] pairs
    attr_reader :auth_properties
    # @return [Hash] trailing metadata sent with the status; add to it (the grpc gem's name)
    attr_reader :output_metadata
    # @return [Hash] initial metadata sent with the response headers (see
    #   {#merge_metadata_to_send})
    attr_reader :metadata_to_send
    # @return [Boolean] whether the response headers went out
    attr_reader :metadata_sent
    # @return [Integer, nil] flags of the messages written from now on: {WriteFlags::NO_COMPRESS}
    #   sends them uncompressed (the gem's ActiveCall#write_flag)
    attr_reader :write_flag

    # @raise [ArgumentError] for a flag swiftgrpc does not support
    def write_flag=(flag)
      WriteFlags.native(flag)
      @write_flag = flag
    end

    # @api private
    def initialize(state, event, spec)
      @state = state
      @spec = spec
      @token = event.token
      @path = event.method
      @metadata = event.metadata
      @peer = event.peer
      @authority = event.authority
      @auth_properties = event.auth || []
      @deadline_ns = event.deadline_ns
      @output_metadata = {}
      @metadata_to_send = {}
      @metadata_sent = false
      @ended = nil      # the status code the call ended with before we completed it
      @done = false     # answered or ended
      @inbox = nil      # MESSAGE / HALF_CLOSE events of a streaming request (nil: ended)
      @sent = nil       # SEND_DONE events of a streaming response (nil: ended)
      @in_flight = 0    # messages sent whose SEND_DONE has not been taken
      @half_closed = false
      @callbacks = nil
      @compressed = (event.message_flags.to_i & Native::MESSAGE_COMPRESSED) != 0
    end

    # @return [Boolean] whether the request message (of a unary or server-streaming call), or
    #   the last one #read (client-streaming, bidi), came compressed from the client (it is
    #   handed over inflated either way): what gRPC's interop `expect_compressed` checks
    def message_compressed?
      @compressed
    end

    # @api private
    attr_reader :token, :state, :spec
    # @api private
    attr_accessor :inbox, :sent, :done, :tag

    # @return [String, nil] the client's certificate (PEM) if it sent a verified one (the grpc
    #   gem's `peer_cert`)
    def peer_cert
      pem = @auth_properties.find { |k, _| k == "x509_pem_cert" }
      pem && pem[1].dup.force_encoding(Encoding::UTF_8)
    end

    # @return [Hash{String=>Array<String>}] the auth properties by name (grpcio's auth_context)
    def auth_context
      @auth_properties.each_with_object({}) { |(k, v), h| (h[k] ||= []) << v }
    end

    # @api private — waits for the SEND_DONE of every message in flight (they leave before the
    # status); raises if the call ended meanwhile
    def drain_writes
      while @sent && @in_flight.positive?
        raise_ended if @sent.pop.nil?
        @in_flight -= 1
      end
    end

    # @return [Time, nil] the call's deadline, nil if the client set none
    def deadline
      return nil if @deadline_ns == Native::DEADLINE_NONE

      Time.now + ((@deadline_ns - Native.swiftgrpc_now_ns) / 1e9)
    end

    # @return [Float, nil] seconds left until the deadline (negative once past), nil if none
    def time_remaining
      return nil if @deadline_ns == Native::DEADLINE_NONE

      (@deadline_ns - Native.swiftgrpc_now_ns) / 1e9
    end

    # @return [Boolean] true once the call ended without our answer: the client cancelled or
    #   went away, the deadline passed, or the server stopped
    def cancelled?
      !@ended.nil?
    end

    # Runs `blk` (once, on a server thread; keep it short) when the call ends without our
    # answer, or at once if it already did.
    # @return [self]
    def on_cancel(&blk)
      run_now = @state.lock.synchronize do
        next true if @ended

        (@callbacks ||= []) << blk
        false
      end
      blk.call if run_now
      self
    end

    # Adds entries to the initial metadata, before it is sent.
    def merge_metadata_to_send(md = {})
      raise WrongState, "initial metadata was already sent" if @metadata_sent

      @metadata_to_send.merge!(md)
    end

    # Compresses this call's responses in `algorithm` (:identity, :deflate, :gzip) instead of the
    # server's default, if the client accepts it (else they go uncompressed), as grpcio's
    # context.set_compression. Before the response headers are sent.
    # @raise [SwiftGRPC::WrongState] after the response headers went out
    def set_compression(algorithm)
      rc = Native.swiftgrpc_call_set_compression(@state.handle, @token,
                                                 Compression.algorithm(algorithm, "set_compression"))
      if rc == Native::E_WRONG_STATE
        raise WrongState, "set_compression: the response headers were already sent; set compression " \
                          "before the first response message or initial metadata"
      end
      check_answer(rc, "swiftgrpc_call_set_compression")
      nil
    end

    # @api private — what was put in {#metadata_to_send} goes out with the first response
    # message, or with the status, as the grpc gem sends it.
    def send_pending_metadata
      send_initial_metadata if !@metadata_sent && !@metadata_to_send.empty?
    end

    # Sends the response headers now, with {#metadata_to_send} and `md`.
    # @raise [SwiftGRPC::Error] when the call has ended
    def send_initial_metadata(md = {})
      merge_metadata_to_send(md) unless md.empty?
      table, count, keep = Metadata.encode(@metadata_to_send)
      rc = Native.swiftgrpc_call_send_initial_metadata(@state.handle, @token, table, count)
      keep.nil? # keeps the buffer alive across the call
      check_answer(rc, "swiftgrpc_call_send_initial_metadata")
      @metadata_sent = true
      nil
    end

    # Sends one response message (server-streaming and bidi handlers; returning or yielding
    # messages does the same).
    # @raise [SwiftGRPC::Cancelled, SwiftGRPC::DeadlineExceeded, SwiftGRPC::Unavailable] once
    #   the call has ended: stop producing
    #
    # Returns once at most SEND_WINDOW messages are in flight: the library says when each left
    # (SEND_DONE), so a client that reads slowly paces the handler, a few messages behind.
    def write(message)
      body = @state.encode_response(self, message)
      raise_ended if @ended
      send_pending_metadata
      rc = Native.swiftgrpc_call_send_message_v2(@state.handle, @token, body, body.bytesize,
                                                 WriteFlags.native(@write_flag))
      @metadata_sent = true if rc.zero?
      check_answer(rc, "swiftgrpc_call_send_message")
      return unless @sent

      @in_flight += 1
      return if @in_flight < SEND_WINDOW

      raise_ended if @sent.pop.nil?
      @in_flight -= 1
      self
    end
    alias send_msg write
    alias << write

    # Reads the next request message of a client-streaming or bidi call.
    # @return [Object, nil] the message, nil after the client's last one
    # @raise [SwiftGRPC::Cancelled, SwiftGRPC::DeadlineExceeded, SwiftGRPC::Unavailable] once
    #   the call has ended
    def read
      return nil if @half_closed
      raise WrongState, "this call has a single request: it is the handler's argument" unless @inbox

      raise_ended if @ended
      rc = Native.swiftgrpc_call_read(@state.handle, @token)
      check_answer(rc, "swiftgrpc_call_read")
      ev = @inbox.pop
      raise_ended if ev.nil?
      if ev.type == Native::EVENT_HALF_CLOSE
        @half_closed = true
        return nil
      end
      @compressed = (ev.message_flags.to_i & Native::MESSAGE_COMPRESSED) != 0
      @state.decode_request(self, ev.message)
    end

    # Yields each request message until the client's last (the grpc gem's name).
    # @return [Enumerator] without a block
    def each_remote_read
      return enum_for(:each_remote_read) unless block_given?

      while (m = read)
        yield m
      end
    end
    alias each each_remote_read
    include Enumerable

    # Ends the call now with CANCELLED (the client sees that status).
    def cancel
      @state.finish(self, nil, StatusCodes::CANCELLED, "Cancelled by the server", {})
    end

    # @api private — the library ended the call (CANCELLED event) with `code`.
    def ended!(code)
      callbacks = @state.lock.synchronize do
        @ended = code
        @done = true
        @state.ended_cv.broadcast
        c = @callbacks
        @callbacks = nil
        c
      end
      @inbox&.push(nil)
      @sent&.push(nil)
      callbacks&.each do |c|
        c.call
      rescue StandardError => e
        warn "swiftgrpc: on_cancel callback raised #{e.class}: #{e.message}"
      end
    end

    # @api private
    def raise_ended
      code = @ended || StatusCodes::CANCELLED
      text = { StatusCodes::DEADLINE_EXCEEDED => "the deadline passed",
               StatusCodes::UNAVAILABLE => "the server is stopping" }
             .fetch(code, "the client cancelled the call")
      raise Error.for(code, text)
    end

    private

    # Waits (up to 5 s) for the call's CANCELLED to set @ended.
    def await_end
      limit = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
      @state.lock.synchronize do
        until @ended
          left = limit - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          break if left <= 0

          @state.ended_cv.wait(@state.lock, left)
        end
      end
    end

    def check_answer(rc, function)
      return if rc.zero?

      # The library closed the call before the handler answered it: its CANCELLED event is on
      # the way (another thread routes it); raised as the call ended, once that is known.
      await_end if rc == Native::E_TOKEN_CLOSED
      if [Native::E_TOKEN_CLOSED, Native::E_ALREADY_COMPLETED, Native::E_UNKNOWN_TOKEN].include?(rc)
        raise_ended if @ended
        raise WrongState, "#{function}: the call is already answered"
      end
      NativeError.raise_for(rc, function)
    end
  end

  # A gRPC server whose handlers run on Ruby threads.
  #
  #   server = SwiftGRPC::Server.new
  #   server.handle(GreeterImpl)                       # a GenericService subclass (or instance)
  #   server.handle("/echo.Echo/Echo", :unary) { |req, call| req }   # raw bytes
  #   port = server.add_http2_port("127.0.0.1:50051")
  #   server.start
  #   server.run_till_terminated_or_interrupted(%w[INT TERM])
  #
  # Handlers, by kind (the grpc gem's conventions):
  # - unary: `(request, call)` returns the response;
  # - server streaming: `(request, call)` yields responses or returns an Enumerable of them;
  # - client streaming: `(call)` reads with `call.each_remote_read`, or `(requests, call)`;
  #   returns the response;
  # - bidi: `(requests)` or `(requests, call)` yields responses or returns an Enumerable.
  # Raising a {SwiftGRPC::Error} (or the grpc gem's GRPC::BadStatus) ends the call with its
  # status; any other exception ends it UNKNOWN "Class: message", as the grpc gem ends it.
  #
  # Events are pulled from the library's completion queue by the pool's threads (the library
  # never runs Ruby code on its own threads): at most two wait on the queue, and a thread that
  # takes a new call runs its handler itself once another thread is waiting in its place.
  class Server
    # Connection-management keywords and their options.
    MANAGEMENT = { keepalive_time_ms: Native::OPT_KEEPALIVE_TIME_MS,
                   keepalive_timeout_ms: Native::OPT_KEEPALIVE_TIMEOUT_MS,
                   keepalive_permit_without_calls: Native::OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                   min_ping_interval_without_data_ms: Native::OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS,
                   max_ping_strikes: Native::OPT_MAX_PING_STRIKES,
                   max_connection_idle_ms: Native::OPT_MAX_CONNECTION_IDLE_MS,
                   max_connection_age_ms: Native::OPT_MAX_CONNECTION_AGE_MS,
                   max_connection_age_grace_ms: Native::OPT_MAX_CONNECTION_AGE_GRACE_MS,
                   so_reuseport: Native::OPT_SO_REUSEPORT }.freeze
    # The gem's server_args that swiftgrpc honours, by their gRPC names.
    SERVER_ARGS = { "grpc.keepalive_time_ms" => :keepalive_time_ms,
                    "grpc.keepalive_timeout_ms" => :keepalive_timeout_ms,
                    "grpc.keepalive_permit_without_calls" => :keepalive_permit_without_calls,
                    "grpc.http2.min_ping_interval_without_data_ms" => :min_ping_interval_without_data_ms,
                    "grpc.http2.max_ping_strikes" => :max_ping_strikes,
                    "grpc.max_connection_idle_ms" => :max_connection_idle_ms,
                    "grpc.max_connection_age_ms" => :max_connection_age_ms,
                    "grpc.max_connection_age_grace_ms" => :max_connection_age_grace_ms,
                    "grpc.so_reuseport" => :so_reuseport }.freeze
    INT_MAX = (1 << 31) - 1 # the gem's (C-core's) "infinite" milliseconds: off here

    # @api private — a signal as Signal.trap takes it, from a name ("int", "SIGTERM") or number
    # @raise [ArgumentError] for a signal that does not exist
    def self.signal_name(sig)
      if sig.is_a?(Integer)
        name = Signal.list.key(sig)
        return name if name
      elsif sig.is_a?(String) || sig.is_a?(Symbol)
        name = sig.to_s.upcase
        name = name[3..] if name.start_with?("SIG")
        return name if Signal.list.key?(name)
      end
      raise ArgumentError, "#{sig.inspect} is not a valid signal"
    end

    # @api private — {option => Integer} from the keywords and the gem's server_args
    def self.management_options(management, server_args)
      raise TypeError, "server_args must be a Hash, not #{server_args.class}" unless server_args.is_a?(Hash)

      named = server_args.to_h do |k, v|
        [SERVER_ARGS.fetch(k.to_s) do
          raise ArgumentError, "server argument #{k.inspect} is not supported by swiftgrpc; " \
                               "supported: #{SERVER_ARGS.keys.join(', ')}"
        end, v]
      end
      named.merge(management).to_h do |name, v|
        opt = MANAGEMENT.fetch(name) { raise ArgumentError, "unknown keyword: #{name.inspect}" }
        v = v ? 1 : 0 if [true, false].include?(v)
        v = 0 if v.is_a?(Integer) && v >= INT_MAX && ![Native::OPT_KEEPALIVE_TIMEOUT_MS, Native::OPT_SO_REUSEPORT].include?(opt)
        [opt, v]
      end
    end

    # @param pool_size [Integer] most handlers running at once; more calls wait their turn
    # @param max_receive_message_size [Integer, nil] bytes (default 4 MiB)
    # @param max_send_message_size [Integer, nil] bytes (default unlimited)
    # @param max_concurrent_streams [Integer, nil] HTTP/2 streams per connection (default 100;
    #   excess streams are refused one by one)
    # @param max_metadata_size [Integer, nil] decoded request header bytes (default 16384)
    # @param max_concurrent_calls [Integer, nil] calls handled at once over every connection
    #   (grpcio's maximum_concurrent_rpcs): one more is answered RESOURCE_EXHAUSTED
    #   "Concurrent RPC limit exceeded!" by the library, before any handler sees it (default: none)
    # @param handshake_timeout_ms [Integer, nil] time a connection has for its HTTP/2 preface
    #   (default 120000)
    # @param max_control_frames_per_second [Integer, nil] control-frame budget of a connection
    #   (default 1000; 0: none)
    # @param compression [Symbol, nil] what responses are compressed in toward clients that
    #   accept it (:identity, :deflate, :gzip; default :identity)
    # @param server_args [Hash] the grpc gem's server arguments (gRPC channel-arg names) among
    #   {SERVER_ARGS}; another is refused
    # Connection management (gRFCs A8, A9; Integers of milliseconds, 0: off): keepalive_time_ms
    # (default 2 hours), keepalive_timeout_ms (20000), keepalive_permit_without_calls,
    # min_ping_interval_without_data_ms (300000), max_ping_strikes (2), max_connection_idle_ms,
    # max_connection_age_ms, max_connection_age_grace_ms.
    #
    # The grpc gem's RpcServer keywords:
    # @param interceptors [Array<ServerInterceptor>] see {ServerInterceptor}
    # @param connect_md_proc [Proc, nil] `(method_name, metadata) -> Hash`: initial metadata sent
    #   back on every call (raising ends the call UNKNOWN, as a handler's exception does)
    # @param poll_period [Numeric, nil] seconds {#stop} gives the calls in flight (default: none)
    # @param max_waiting_requests [Integer, nil] accepted and ignored, as the gem (since 1.x)
    #   ignores it: calls beyond pool_size wait for a thread (they are never refused for it)
    # @param pool_keep_alive [Numeric, nil] seconds {#stop} waits for the pool's threads to
    #   leave the queue (the gem's: how long its pool's stop waits for its workers; default 5)
    def initialize(pool_size: 32, max_receive_message_size: nil, max_send_message_size: nil,
                   max_concurrent_streams: nil, max_metadata_size: nil, handshake_timeout_ms: nil,
                   max_control_frames_per_second: nil, max_concurrent_calls: nil, compression: nil,
                   server_args: {}, interceptors: [], connect_md_proc: nil, poll_period: nil,
                   max_waiting_requests: nil, pool_keep_alive: 5, # rubocop:disable Lint/UnusedMethodArgument
                   **management)
      raise ArgumentError, "pool_size must be a positive Integer" unless pool_size.is_a?(Integer) && pool_size.positive?
      unless connect_md_proc.nil? || connect_md_proc.respond_to?(:call)
        raise TypeError, "connect_md_proc must be a Proc, not #{connect_md_proc.class}"
      end
      unless poll_period.nil? || (poll_period.is_a?(Numeric) && poll_period >= 0)
        raise ArgumentError, "poll_period must be a number of seconds >= 0"
      end
      unless pool_keep_alive.is_a?(Numeric) && pool_keep_alive >= 0
        raise ArgumentError, "pool_keep_alive must be a number of seconds >= 0"
      end

      @poll_period = poll_period
      @state = ServerState.new(pool_size, Interceptors.new(interceptors), connect_md_proc, pool_keep_alive)
      { Native::OPT_MAX_RECV_MESSAGE_SIZE => max_receive_message_size,
        Native::OPT_MAX_SEND_MESSAGE_SIZE => max_send_message_size,
        Native::OPT_MAX_CONCURRENT_STREAMS => max_concurrent_streams,
        Native::OPT_MAX_METADATA_SIZE => max_metadata_size,
        Native::OPT_HANDSHAKE_TIMEOUT_MS => handshake_timeout_ms,
        Native::OPT_MAX_CONTROL_FRAMES_PER_SECOND => max_control_frames_per_second,
        Native::OPT_MAX_CONCURRENT_CALLS => max_concurrent_calls }
        .merge(Server.management_options(management, server_args)).each do |opt, v|
        next if v.nil?
        raise TypeError, "server options must be Integers, not #{v.class}" unless v.is_a?(Integer)

        @state.option(opt, v)
      end
      @state.option(Native::OPT_DEFAULT_COMPRESSION, Compression.algorithm(compression, "compression")) if compression
      ObjectSpace.define_finalizer(self, ServerState.finalizer(@state))
    end

    # Serves a service, or one method.
    #
    # @overload handle(service)
    #   @param service [Class, Object] a class including SwiftGRPC::GenericService or
    #     GRPC::GenericService (instantiated with `new`), or an instance of one; its snake_case
    #     methods serve its rpcs
    # @overload handle(path, kind, &handler)
    #   @param path [String] "/package.Service/Method"; messages are raw byte Strings
    #   @param kind [Symbol] :unary, :server_streaming, :client_streaming, :bidi_streaming
    # @return [self]
    def handle(service_or_path, kind = nil, handler = nil, &block)
      if service_or_path.is_a?(String)
        fn = handler || block
        raise ArgumentError, "handle(#{service_or_path.inspect}, kind) needs a block" unless fn

        @state.add(MethodSpec.new(service_or_path, MethodSpec.kind_value(kind)), fn)
      else
        obj = service_or_path.is_a?(Class) ? service_or_path.new : service_or_path
        MethodSpec.from_service(obj).each do |spec|
          @state.add(spec, obj.method(spec.handler_name))
        end
        (@services ||= []) << obj.class
      end
      self
    end

    # Listens on `address` ("host:port", "[::1]:0", "unix:/path"); port 0 picks one.
    # @param credentials [ServerCredentials, Symbol] TLS settings, or :this_port_is_insecure
    # @return [Integer] the bound port (0 for Unix sockets)
    def add_http2_port(address, credentials = :this_port_is_insecure)
      unless credentials == :this_port_is_insecure || credentials.is_a?(ServerCredentials)
        raise TypeError, "credentials must be SwiftGRPC::ServerCredentials or :this_port_is_insecure, " \
                         "not #{credentials.inspect}"
      end
      raise TypeError, "address must be a String, not #{address.class}" unless address.is_a?(String)

      @state.listen(address, credentials == :this_port_is_insecure ? nil : credentials)
    end
    alias listen add_http2_port

    # Starts serving. Once only.
    # @return [self]
    def start
      add_reflection if @reflection && !@state.started
      @state.start
      self
    end

    # Serves gRPC server reflection (grpc.reflection.v1 and v1alpha) for every service this
    # server serves, from their google-protobuf descriptors (see {Reflection}); before #start.
    # The grpc gem has none; grpcio's is grpc_reflection.v1alpha.reflection.enable_server_reflection.
    # @return [self]
    def enable_reflection
      raise ClosedError, "the server was started: enable reflection before #start" if @state.started

      require_relative "reflection"
      @reflection = true
      self
    end

    private

    # Adds the reflection services: ListServices answers every service served here (raw-path
    # ones and the health service included); the files describe the service classes.
    def add_reflection
      names = @state.paths.map { |p| p.split("/")[1] }
      names << Health::SERVICE if @health
      names = (names + Reflection::SERVICES).uniq.sort
      files = Reflection::Files.new((@services || []).uniq)
      Reflection::SERVICES.each do |name|
        pkg = name.delete_suffix(".ServerReflection")
        handler = Reflection::Service.new(pkg, names, files)
        m = Reflection::Messages.classes(pkg)
        req = m["ServerReflectionRequest"]
        resp = m["ServerReflectionResponse"]
        spec = MethodSpec.new("/#{name}/ServerReflectionInfo", Native::KIND_BIDI_STREAMING,
                              decode_request: ->(b) { req.decode(b) }, encode_response: ->(r) { resp.encode(r) })
        @state.add(spec, handler)
      end
    end

    public

    # Serves grpc.health.v1.Health (Check, Watch) from the library; before #start.
    # @return [Health] its statuses
    def enable_health
      @state.enable_health
      @health ||= Health.new(@state)
    end

    # @return [Boolean] started and not stopped
    def running?
      @state.started && !@state.stopping
    end

    # Stops: no new calls, `grace` seconds for the calls in flight (default: the poll_period;
    # nil: none; their clients get UNAVAILABLE, their handlers see `cancelled?`), then the
    # pool's threads end. Idempotent; returns when the server is down.
    def stop(grace = @poll_period)
      @state.stop(grace.nil? ? 0 : (grace * 1000).to_i)
      self
    end

    # The grpc gem's: waits until the server is running.
    # @param timeout [Numeric, nil] seconds (nil: as long as it takes)
    # @return [Boolean] whether it is running
    def wait_till_running(timeout = nil)
      @state.wait_running(timeout)
    end

    # @return [Symbol] :not_started, :running, :stopping or :stopped (the gem's running_state)
    def running_state
      if @state.stopped then :stopped
      elsif @state.stopping then :stopping
      elsif @state.started then :running
      else :not_started
      end
    end

    # @return [Boolean] whether the server was stopped (the gem's)
    def stopped?
      @state.stopping || false
    end

    # swiftgrpc's own: calls the handler of the unary method `path` of this running server
    # `iterations` times in process, without a connection (swiftgrpc_server_probe), and returns
    # the mean seconds per round trip: the cost of the host boundary. Responses are discarded.
    # Raises Timeout::Error after `timeout` seconds (nil: none), WrongState if the server is not
    # running or the method is not unary, ArgumentError for an unknown method.
    def probe_host(path, request = "", iterations: 1, timeout: nil)
      raise ArgumentError, "iterations must be a positive Integer" unless iterations.is_a?(Integer) && iterations.positive?
      raise TypeError, "request must be a String" unless request.is_a?(String)

      out = FFI::MemoryPointer.new(:int64)
      ms = timeout.nil? ? -1 : (timeout * 1000).to_i
      rc = Native.swiftgrpc_server_probe(@state.handle, path.to_s, request, request.bytesize, iterations, ms, out)
      raise Timeout::Error, Native.last_error.to_s if rc == Native::E_TIMEOUT

      NativeError.raise_for(rc, "swiftgrpc_server_probe") unless rc.zero?
      out.read_int64 / 1e9 / iterations
    end

    # Blocks until the server is stopped (from another thread or by a signal).
    def wait_till_terminated
      @state.wait_stopped
    end

    # The grpc gem's RpcServer#run (and run_till_terminated): starts if needed, then blocks
    # until the server is stopped.
    def run
      start unless @state.started
      wait_till_terminated
    end
    alias run_till_terminated run

    # The grpc gem's: starts if needed, then blocks until one of `signals` arrives (or {#stop}),
    # then stops with `grace` seconds. Signals as the gem takes them: names with or without
    # "SIG", any case, or numbers; an unknown one raises before anything starts.
    # `wait_interval` (the gem's polling period) is not needed here and is ignored.
    def run_till_terminated_or_interrupted(signals = %w[INT TERM], wait_interval = 60, grace: 5) # rubocop:disable Lint/UnusedMethodArgument
      signals = signals.map { |s| Server.signal_name(s) }
      r, w = IO.pipe
      old = signals.to_h { |s| [s, Signal.trap(s) { w.write_nonblock(".", exception: false) }] }
      start unless @state.started # (the traps are set first: once it answers, they are there)
      waiter = Thread.new { @state.wait_stopped; w.write_nonblock(".", exception: false) }
      r.read(1)
      stop(grace)
      waiter.join
    ensure
      old&.each { |s, h| Signal.trap(s, h || "DEFAULT") }
      r&.close
      w&.close
    end
  end

  # Everything the pool's threads use; the Server only points at it, so that a server dropped
  # without #stop is collected and stopped by its finalizer.
  # @api private
  class ServerState
    INTERNAL = StatusCodes::INTERNAL
    POLL_MS = 250 # waits on the queue are bounded, so threads stay killable (Thread#kill, exit)

    attr_reader :handle, :lock, :started, :stopping, :stopped, :ended_cv

    def initialize(pool_size, interceptors = Interceptors.new([]), connect_md_proc = nil, keep_alive = 5)
      @interceptors = interceptors
      @keep_alive = keep_alive
      @connect_md_proc = connect_md_proc
      out = FFI::MemoryPointer.new(:uint64)
      NativeError.check(Native.swiftgrpc_server_create(Runtime.handle, out), "swiftgrpc_server_create")
      @handle = out.read_uint64
      @pool_size = pool_size
      @methods = {}
      @calls = {} # the calls being served, by the host tag bound to each (swiftgrpc_call_set_tag)
      @next_tag = 0
      @lock = Mutex.new
      @wake = ConditionVariable.new
      @listening = 0
      @threads = 0
      @parked = 0
      @wakeups = 0
      @backlog = []
      @queue = 0
      @started = false
      @stopping = false
      @stopped = false
      @stopped_cv = ConditionVariable.new
      @exited_cv = ConditionVariable.new
      @ended_cv = ConditionVariable.new # a call ended (CANCELLED): see ServerCall#await_end
      @closer = Runtime.register { stop(0) }
    end

    # Stops a server dropped without #stop. On a thread of its own: Ruby runs finalizers where
    # a Mutex may not be taken ("can't be called from trap context"), and #stop takes some.
    def self.finalizer(state)
      proc do
        Thread.new { state.stop(0, wait: false) rescue nil } # rubocop:disable Style/RescueModifier
      rescue ThreadError # the interpreter is exiting: Runtime.shutdown stops it
        nil
      end
    end

    # @api private — serves grpc.health.v1.Health from the library
    def enable_health
      raise ClosedError, "the server was started: enable health before #start" if @started

      taken = @methods.keys.find { |p| p.start_with?(Health::PREFIX) }
      raise ArgumentError, "#{taken} is already handled: the built-in health service cannot serve it" if taken

      NativeError.check(Native.swiftgrpc_server_enable_health(@handle), "swiftgrpc_server_enable_health")
      @health = true
    end

    def option(opt, value)
      rc = Native.swiftgrpc_server_set_option(@handle, opt, value)
      raise ArgumentError, "server option: #{Native.last_error}" if rc == Native::E_INVALID_ARGUMENT

      NativeError.check(rc, "swiftgrpc_server_set_option")
    end

    # @return [Array<String>] the method paths handled
    def paths
      @methods.keys
    end

    def add(spec, fn)
      raise ClosedError, "the server was started: add handlers before #start" if @started
      raise ArgumentError, "#{spec.path} is already handled" if @methods.key?(spec.path)
      if @health && spec.path.start_with?(Health::PREFIX)
        raise ArgumentError, "#{spec.path} is served by the built-in health service"
      end
      raise TypeError, "the handler of #{spec.path} must respond to #call" unless fn.respond_to?(:call)

      arity = fn.arity
      return @methods[spec.path] = [spec, fn] if fn.is_a?(Proc) && !fn.lambda?

      want = case spec.kind
             when Native::KIND_UNARY, Native::KIND_SERVER_STREAMING then [2, -1, -2, -3]
             else [1, 2, -1, -2, -3]
             end
      unless want.include?(arity)
        raise ArgumentError, "the handler of #{spec.path} takes #{arity} arguments; see " \
                             "SwiftGRPC::Server for the signature of each RPC kind"
      end
      @methods[spec.path] = [spec, fn]
    end

    def listen(address, credentials)
      raise ClosedError, "the server was started: listen before #start" if @started

      port = FFI::MemoryPointer.new(:int)
      rc = if credentials
             (@credentials ||= []) << credentials
             Native.swiftgrpc_server_listen_secure(@handle, address, credentials.handle, port)
           else
             Native.swiftgrpc_server_listen(@handle, address, port)
           end
      if rc == Native::E_INVALID_ARGUMENT
        raise ArgumentError, "cannot listen on #{address.inspect}: #{Native.last_error}"
      end

      NativeError.check(rc, "swiftgrpc_server_listen")
      port.read_int
    end

    def start
      @lock.synchronize do
        raise ClosedError, "the server was stopped" if @stopping
        raise WrongState, "the server is already started" if @started

        @started = true
      end
      @queue = Runtime.new_queue
      @methods.each do |path, (spec, _)|
        NativeError.check(Native.swiftgrpc_register_host_queue(@handle, path, spec.kind, @queue),
                          "swiftgrpc_register_host_queue")
      end
      NativeError.check(Native.swiftgrpc_server_start(@handle), "swiftgrpc_server_start")
      @lock.synchronize do
        @threads = 2
        @listening = 2 # counted before they start: see #work
        @running = true
        @stopped_cv.broadcast
      end
      2.times { spawn }
    end

    # @param wait [Boolean] wait for the pool's threads (not from a finalizer)
    def stop(grace_ms, wait: true)
      first = @lock.synchronize do
        next false if @stopping

        @stopping = true
      end
      unless first
        wait_stopped if wait
        return
      end
      Runtime.unregister(@closer)
      Native.swiftgrpc_server_shutdown(@handle, grace_ms) if @started
      if @queue != 0
        Native.swiftgrpc_queue_shutdown(@queue)
        @lock.synchronize do
          @wake.broadcast
          deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + @keep_alive
          # only the threads waiting on the queue: a handler still running is not waited for
          while wait && @listening.positive?
            left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
            break if left <= 0

            @exited_cv.wait(@lock, left)
          end
        end
      end
      Native.swiftgrpc_server_destroy(@handle)
      Native.swiftgrpc_queue_destroy(@queue) if @queue != 0
      @lock.synchronize do
        @stopped = true
        @stopped_cv.broadcast
      end
    end

    def wait_stopped
      @lock.synchronize { @stopped_cv.wait(@lock) until @stopped }
    end

    def wait_running(timeout)
      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @lock.synchronize do
        until @running || @stopping
          left = deadline && deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          return false if left && left <= 0

          @stopped_cv.wait(@lock, left)
        end
        @running && !@stopping
      end
    end

    # -- messages
    def decode_request(call, bytes)
      dec = call.spec.decode_request
      return bytes if dec.nil?

      begin
        dec.call(bytes)
      rescue StandardError => e
        raise Internal, "cannot decode the request: #{e.class}: #{e.message}"
      end
    end

    def encode_response(call, message)
      enc = call.spec.encode_response
      if enc.nil?
        return message if message.is_a?(String)

        raise TypeError, "#{call.path} is served raw: responses must be Strings, not #{message.class}"
      end
      enc.call(message)
    end

    # -- answering
    # Completes the call unless it already ended; never raises.
    def finish(call, body, code, details, trailers)
      return if call.done

      begin
        call.send_pending_metadata
      rescue TypeError, ArgumentError => e # metadata_to_send the library refuses
        body = nil
        code = INTERNAL
        details = "invalid initial metadata: #{e.message}"
      rescue StandardError
        nil # the call ended: the completion below is refused too
      end
      table, count, keep = begin
        Metadata.encode(trailers)
      rescue TypeError => e
        code = INTERNAL
        details = "invalid trailing metadata: #{e.message}"
        [nil, 0, nil]
      end
      details = details&.to_s&.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
      details = details&.delete("\0")
      if body && call.write_flag && WriteFlags.native(call.write_flag) != 0 &&
         Native.swiftgrpc_call_send_message_v2(@handle, call.token, body, body.bytesize,
                                               Native::WRITE_NO_COMPRESS).zero?
        body = nil # sent on its own, uncompressed; its SEND_DONE finds no waiter
      end
      rc = Native.swiftgrpc_host_complete(@handle, call.token, body, body ? body.bytesize : 0,
                                          code, details, table, count)
      keep.nil?
      if [Native::E_INVALID_METADATA, Native::E_INVALID_UTF8, Native::E_TOO_LARGE].include?(rc)
        why = Native.last_error
        code = rc == Native::E_TOO_LARGE ? StatusCodes::RESOURCE_EXHAUSTED : INTERNAL
        rc = Native.swiftgrpc_host_complete(@handle, call.token, nil, 0, code,
                                            "the server could not send its answer: #{why}",
                                            nil, 0)
      end
      call.done = true
      @lock.synchronize { @calls.delete(call.tag) } if rc.zero?
    end

    def run_call(ev)
      spec, fn = @methods[ev.method]
      call = ServerCall.new(self, ev, spec)
      call.inbox = Thread::Queue.new if ev.kind >= Native::KIND_CLIENT_STREAMING
      call.sent = Thread::Queue.new if ev.kind == Native::KIND_SERVER_STREAMING || ev.kind == Native::KIND_BIDI_STREAMING
      tag = @lock.synchronize do
        @next_tag += 1
        @calls[@next_tag] = call
        @next_tag
      end
      call.tag = tag
      # Every later event of the call carries the tag; refused, the call ended first (its
      # CANCELLED comes untagged and is dropped by #route).
      unless Native.swiftgrpc_call_set_tag(@handle, ev.token, tag).zero?
        @lock.synchronize { @calls.delete(tag) }
        call.ended!(StatusCodes::CANCELLED)
        return
      end
      invoke(call, spec, fn, ev)
    end

    # Runs the handler (inside the interceptors) and answers with what it returns or raises.
    def invoke(call, spec, fn, ev)
      if @connect_md_proc
        md = @connect_md_proc.call(call.path, call.metadata)
        call.merge_metadata_to_send(md) if md.is_a?(Hash)
      end
      case spec.kind
      when Native::KIND_UNARY
        req = decode_request(call, ev.message)
        intercepted(:request_response, fn, call, request: req) do
          resp = fn.call(req, call)
          finish(call, encode_response(call, resp), StatusCodes::OK, nil, call.output_metadata)
        end
      when Native::KIND_CLIENT_STREAMING
        intercepted(:client_streamer, fn, call) do
          resp = fn.arity == 1 ? fn.call(call) : fn.call(call.each_remote_read, call)
          finish(call, encode_response(call, resp), StatusCodes::OK, nil, call.output_metadata)
        end
      when Native::KIND_SERVER_STREAMING
        req = decode_request(call, ev.message)
        intercepted(:server_streamer, fn, call, request: req) do
          stream_responses(call) { |writer| fn.call(req, call, &writer) }
        end
      else
        requests = call.each_remote_read
        intercepted(:bidi_streamer, fn, call, requests: requests) do
          stream_responses(call) do |writer|
            fn.arity == 1 ? fn.call(requests, &writer) : fn.call(requests, call, &writer)
          end
        end
      end
    rescue Exception => e # rubocop:disable Lint/RescueException -- every call gets a status
      fail_call(call, e)
      raise unless e.is_a?(StandardError) || e.is_a?(ScriptError)
    end

    def intercepted(type, fn, call, **args, &blk)
      return blk.call if @interceptors.none?

      @interceptors.intercept(type, { method: fn, call: call, **args }, &blk)
    end

    # A streaming handler's responses, yielded to the writer it is given or returned as an
    # Enumerable, then the status.
    def stream_responses(call)
      yielded = false
      writer = proc do |m|
        yielded = true
        call.write(m)
      end
      out = yield writer
      out.each { |m| call.write(m) } if !yielded && !out.nil? && out.respond_to?(:each)
      call.drain_writes
      finish(call, nil, StatusCodes::OK, nil, call.output_metadata)
    end

    def fail_call(call, err)
      return if call.done

      code, details, md = status_for(err)
      finish(call, nil, code, details, call.output_metadata.merge(md || {}))
    end

    # The status an exception raised by a handler ends its call with, as the grpc gem answers:
    # a status error's own, else UNKNOWN "Class: message" (logged with its backtrace).
    def status_for(err)
      return [err.code, err.details, err.metadata] if err.is_a?(Error)
      return [err.code, err.details, err.metadata] if defined?(::GRPC::BadStatus) && err.is_a?(::GRPC::BadStatus)

      warn "swiftgrpc: a handler raised #{err.class}: #{err.message}\n  #{(err.backtrace || []).first(5).join("\n  ")}" if $VERBOSE
      [StatusCodes::UNKNOWN, "#{err.class}: #{err.message}", nil]
    end

    # A MESSAGE, HALF_CLOSE, SEND_DONE or CANCELLED event: to the call whose tag it carries
    # (an untagged one is the CANCELLED of a call that ended before #run_call bound it).
    def route(ev)
      return if ev.tag.zero?

      if ev.type == Native::EVENT_CANCELLED
        call = @lock.synchronize { @calls.delete(ev.tag) }
        call&.ended!(ev.status_code)
      else
        call = @lock.synchronize { @calls[ev.tag] }
        box = ev.type == Native::EVENT_SEND_DONE ? call&.sent : call&.inbox
        box&.push(ev)
      end
    end

    # -- the pool
    def spawn
      Thread.new { work }.name = "swiftgrpc-server"
    end

    # A pool thread: waits on the queue; routes messages and cancellations; runs a new call
    # itself once another thread is listening in its place (waking a parked one or starting
    # one, up to pool_size + 1), else leaves it in the backlog for the next thread that ends
    # a call. Every thread is always counted as exactly one of listening (waiting on the queue
    # or on its way there), parked, or running a call: the thread that wakes or starts another
    # counts it as listening, so a call is never left in the backlog with nobody to take it.
    def work
      q = @queue
      out = FFI::MemoryPointer.new(:pointer)
      loop do
        ev = Runtime.next_event(q, POLL_MS, out)
        spawn_one = false
        action = @lock.synchronize do
          @listening -= 1
          @exited_cv.broadcast if @stopping
          if ev.is_a?(Integer)
            next :exit unless ev == Native::E_TIMEOUT && !@stopping
          elsif ev.type == Native::EVENT_CALL
            if @listening.zero? # nobody else waits on the queue: get someone
              if @parked.positive?
                @parked -= 1
                @wakeups += 1
                @wake.signal
                @listening += 1 # on the woken thread's behalf
              elsif @threads < @pool_size + 1
                @threads += 1
                spawn_one = true
                @listening += 1 # on the new thread's behalf
              else # every thread is busy: the call waits its turn, this one keeps listening
                @backlog << ev
                @listening += 1
                next :again
              end
            end
            next :run
          end
          @listening += 1 # routing is quick: back to the queue right after
          :route
        end
        case action
        when :exit then break
        when :route then guarded { route(ev) } unless ev.is_a?(Integer)
        when :run
          spawn if spawn_one
          guarded { run_call(ev) }
          break unless after_call
        end
      end
    ensure
      @lock.synchronize { @threads -= 1 }
    end

    # Runs one dispatch step: nothing it raises may end a pool thread.
    def guarded
      yield
    rescue StandardError, ScriptError => e
      warn "swiftgrpc: dispatching an event failed: #{e.class}: #{e.message}"
    end

    # Runs backlogged calls, then goes back to the queue (counted as listening), or parks if
    # two threads already listen.
    # @return [Boolean] false when this thread should end
    def after_call
      loop do
        ev = @lock.synchronize do
          next @backlog.shift unless @backlog.empty?
          if @listening < 2 || @stopping
            @listening += 1
            return true
          end

          @parked += 1
          @wake.wait(@lock) until @wakeups.positive? || @stopping
          if @wakeups.positive? # woken by a thread that counted us as listening
            @wakeups -= 1
            return true
          end
          @parked -= 1
          return false # stopping
        end
        guarded { run_call(ev) }
      end
    end
  end
end

module SwiftGRPC
  # The health checking service (grpc.health.v1.Health, gRPC's doc/health-checking.md) served by
  # the library itself for a server ({Server#enable_health}): Check and Watch, for Kubernetes gRPC
  # probes, grpc_health_probe and load balancers. Statuses as the gem's Grpc::Health::Checker
  # takes them (`add_status(service, status)`): Integers of
  # Grpc::Health::V1::HealthCheckResponse::ServingStatus or their names. The overall status
  # (service "") starts SERVING; {Server#stop} first sets every service NOT_SERVING and ends the
  # Watch streams.
  class Health
    SERVICE = "grpc.health.v1.Health"
    PREFIX = "/#{SERVICE}/"
    STATUSES = { UNKNOWN: Native::HEALTH_UNKNOWN, SERVING: Native::HEALTH_SERVING,
                 NOT_SERVING: Native::HEALTH_NOT_SERVING,
                 SERVICE_UNKNOWN: Native::HEALTH_SERVICE_UNKNOWN }.freeze

    # @api private
    def initialize(state)
      @state = state
    end

    # Sets `service`'s status and tells its watchers; ignored once the server is stopping.
    # @param status [Integer, Symbol, String] 0-3, or :SERVING, :NOT_SERVING, ...
    def set(service, status)
      raise TypeError, "service must be a String, not #{service.class}" unless service.is_a?(String)

      value = status.is_a?(Integer) ? status : STATUSES[status.to_s.upcase.to_sym]
      raise ArgumentError, "unknown health status #{status.inspect}" unless value

      rc = Native.swiftgrpc_server_set_health(@state.handle, service, value)
      raise ArgumentError, Native.last_error if [Native::E_INVALID_ARGUMENT, Native::E_INVALID_UTF8].include?(rc)
      return nil if [Native::E_WRONG_STATE, Native::E_BAD_HANDLE].include?(rc) # stopping: NOT_SERVING stays

      NativeError.check(rc, "swiftgrpc_server_set_health")
      nil
    end
    alias add_status set
  end
end
