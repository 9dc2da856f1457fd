# frozen_string_literal: true

module SwiftGRPC
  # How a client call ended: its status code, message, and the metadata that came back.
  Status = Struct.new(:code, :details, :metadata, :initial_metadata) do
    def ok?
      code == StatusCodes::OK
    end
  end

  # A channel to one target ("host:port", "dns:///host:port", "ipv4:…", "unix:/path"). It
  # connects on the first call and reconnects as needed. Its call methods have the names and
  # arguments of the grpc gem's GRPC::ClientStub (`request_response`, `server_streamer`,
  # `client_streamer`, `bidi_streamer`); generated stubs use them through {ClientStub}.
  #
  # Every call takes `metadata:` (Hash; binary values under "-bin" keys), `deadline:` (a Time)
  # or `timeout:` (seconds), and `wait_for_ready:`. A status other than OK raises the
  # {SwiftGRPC::Error} subclass of its code, carrying details and trailing metadata.
  class Channel
    POLL_MS = 250 # waits are bounded so that Thread#raise, Timeout and Ctrl-C reach them
    # Response reads a streaming call keeps asked (of SWIFTGRPC_MAX_OUTSTANDING_READS): messages
    # already received then come without a round trip each; at most this many ahead.
    READ_WINDOW = 16

    ARGS = { connect_timeout: [Native::CHANNEL_CONNECT_TIMEOUT_MS, :ms],
             initial_backoff: [Native::CHANNEL_INITIAL_BACKOFF_MS, :ms],
             max_backoff: [Native::CHANNEL_MAX_BACKOFF_MS, :ms],
             keepalive_time: [Native::CHANNEL_KEEPALIVE_TIME_MS, :ms],
             keepalive_timeout: [Native::CHANNEL_KEEPALIVE_TIMEOUT_MS, :ms],
             keepalive_permit_without_calls: [Native::CHANNEL_KEEPALIVE_PERMIT_WITHOUT_CALLS, :bool],
             max_send_message_size: [Native::CHANNEL_MAX_SEND_MESSAGE_SIZE, :int],
             max_receive_message_size: [Native::CHANNEL_MAX_RECV_MESSAGE_SIZE, :int],
             timeout: [Native::CHANNEL_DEFAULT_TIMEOUT_MS, :ms],
             user_agent: [Native::CHANNEL_USER_AGENT, :string],
             lb_policy: [Native::CHANNEL_LB_POLICY, :lb],
             authority: [Native::CHANNEL_AUTHORITY, :string],
             max_metadata_size: [Native::CHANNEL_MAX_METADATA_SIZE, :int],
             compression: [Native::CHANNEL_DEFAULT_COMPRESSION, :compression],
             min_time_between_resolutions: [Native::CHANNEL_MIN_TIME_BETWEEN_RESOLUTIONS_MS, :ms] }.freeze

    # @return [String]
    attr_reader :target
    # @api private
    attr_reader :handle

    # @param target [String]
    # @param options durations in seconds (`connect_timeout`, `initial_backoff`, `max_backoff`,
    #   `keepalive_time`, `keepalive_timeout`, `timeout`: the default per-call timeout), sizes
    #   in bytes (`max_send_message_size`, `max_receive_message_size`), `user_agent`,
    #   `authority`, `lb_policy` (:pick_first or :round_robin), `keepalive_permit_without_calls`,
    #   `compression` (:identity, :deflate, :gzip: what requests are compressed in)
    # @param credentials [ChannelCredentials, nil] TLS (nil: plaintext)
    # @param ssl_target_name_override [String, nil] the host the server's certificate must
    #   cover (and the default :authority), instead of the target's
    def initialize(target, credentials: nil, ssl_target_name_override: nil, **options)
      raise TypeError, "target must be a String, not #{target.class}" unless target.is_a?(String)
      unless credentials.nil? || credentials.is_a?(ChannelCredentials)
        raise TypeError, "credentials must be SwiftGRPC::ChannelCredentials, not #{credentials.class}"
      end

      @target = target
      @credentials = credentials # its call credentials' procs stay alive with the channel
      args, keep = Channel.encode_args(options)
      out = FFI::MemoryPointer.new(:uint64)
      if credentials
        creds = credentials.create_handle(ssl_target_name_override)
        rc = Native.swiftgrpc_channel_create_secure(Runtime.handle, target, creds, args, options.size, out)
        Native.swiftgrpc_channel_credentials_destroy(creds) # the channel keeps them
      else
        rc = Native.swiftgrpc_channel_create(Runtime.handle, target, args, options.size, out)
      end
      keep.nil?
      if rc == Native::E_INVALID_ARGUMENT
        raise ArgumentError, "cannot create a channel to #{target.inspect}: #{Native.last_error}"
      end

      NativeError.check(rc, "swiftgrpc_channel_create")
      @handle = out.read_uint64
      @closed = false
      handle = @handle # (the block must not hold the channel: it would never be collected)
      @closer = Runtime.register { Native.swiftgrpc_channel_destroy(handle) }
      ObjectSpace.define_finalizer(self, Channel.finalizer(@handle, @closer))
    end

    # @api private
    def self.finalizer(handle, closer)
      proc do
        Runtime.unregister(closer)
        Native.swiftgrpc_channel_destroy(handle)
      end
    end

    # @api private
    def self.encode_args(options)
      return [nil, nil] if options.empty?

      keep = []
      buf = FFI::MemoryPointer.new(:char, Native::CHANNEL_ARG_SIZE * options.size)
      options.each_with_index do |(name, value), i|
        key, type = ARGS.fetch(name) do
          raise ArgumentError, "unknown channel option #{name.inspect}; known: #{ARGS.keys.join(', ')}"
        end
        int = 0
        str = nil
        case type
        when :ms
          raise TypeError, "#{name} must be Numeric seconds, not #{value.class}" unless value.is_a?(Numeric)

          int = (value * 1000).round
        when :int
          raise TypeError, "#{name} must be an Integer, not #{value.class}" unless value.is_a?(Integer)

          int = value
        when :bool then int = value ? 1 : 0
        when :compression then int = Compression.algorithm(value, "compression")
        when :lb
          int = { pick_first: Native::LB_PICK_FIRST, round_robin: Native::LB_ROUND_ROBIN }.fetch(value.to_sym) do
            raise ArgumentError, "lb_policy must be :pick_first or :round_robin"
          end
        when :string
          raise TypeError, "#{name} must be a String, not #{value.class}" unless value.is_a?(String)

          str = FFI::MemoryPointer.from_string(value)
          keep << str
        end
        base = i * Native::CHANNEL_ARG_SIZE
        buf.put_int32(base, key)
        buf.put_int64(base + 8, int)
        buf.put_pointer(base + 16, str)
      end
      [buf, keep]
    end

    # Refuses new calls; calls in flight run to their end, then the connections close.
    def close
      @closed = true
      Native.swiftgrpc_channel_close(@handle)
      nil
    end

    # @return [Boolean]
    def closed?
      @closed
    end

    # @return [Symbol] :idle, :connecting, :ready, :transient_failure or :shutdown
    def connectivity_state(try_to_connect = false)
      out = FFI::MemoryPointer.new(:int)
      NativeError.check(Native.swiftgrpc_channel_state(@handle, try_to_connect ? 1 : 0, out),
                        "swiftgrpc_channel_state")
      STATES[out.read_int]
    end

    STATES = %i[idle connecting ready transient_failure shutdown].freeze

    # Waits up to `timeout` seconds (nil: forever) for the state to differ from `last_state`.
    # @return [Symbol, nil] the new state, nil on timeout
    def wait_for_state_change(last_state, timeout = nil)
      last = STATES.index(last_state) or raise ArgumentError, "unknown state #{last_state.inspect}"
      out = FFI::MemoryPointer.new(:int)
      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        wait = POLL_MS
        if deadline
          left = ((deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)) * 1000).ceil
          return nil if left <= 0

          wait = [wait, left].min
        end
        rc = Native.swiftgrpc_channel_wait_state_change(@handle, last, wait, out)
        next if rc == Native::E_TIMEOUT

        NativeError.check(rc, "swiftgrpc_channel_wait_state_change")
        return STATES[out.read_int]
      end
    end

    # A unary call.
    # @param marshal [Proc, nil] request -> bytes (nil: `request` is a String of bytes)
    # @param unmarshal [Proc, nil] bytes -> response (nil: the bytes are returned)
    # @param return_op [Boolean] return an {Operation} to #execute instead of calling now
    # @return [Object] the response
    # @raise [SwiftGRPC::Error] for a status other than OK
    def request_response(path, request, marshal = nil, unmarshal = nil, metadata: {}, deadline: nil,
                         timeout: nil, wait_for_ready: false, return_op: false, credentials: nil)
      now_or_op(return_op) do |op|
        body = Channel.marshal(marshal, request)
        st = unary(path, body, metadata, deadline, timeout, wait_for_ready, op, credentials)
        Channel.unmarshal(unmarshal, st.last)
      end
    end

    # A server-streaming call. With a block, yields each response and returns when the stream
    # ends; without, returns a {ResponseStream} (Enumerable, with #cancel).
    def server_streamer(path, request, marshal = nil, unmarshal = nil, metadata: {}, deadline: nil,
                        timeout: nil, wait_for_ready: false, return_op: false, credentials: nil, &blk)
      now_or_op(return_op) do |op|
        call = ClientCall.new(self, path, Native::KIND_SERVER_STREAMING, metadata,
                              Channel.marshal(marshal, request), deadline, timeout,
                              wait_for_ready, unmarshal, credentials: credentials)
        op&.attach(call)
        responses(call, blk)
      end
    end

    # A client-streaming call: sends every element of `requests` (an Enumerable), then
    # returns the response.
    def client_streamer(path, requests, marshal = nil, unmarshal = nil, metadata: {}, deadline: nil,
                        timeout: nil, wait_for_ready: false, return_op: false, credentials: nil)
      now_or_op(return_op) do |op|
        call = ClientCall.new(self, path, Native::KIND_CLIENT_STREAMING, metadata, nil, deadline,
                              timeout, wait_for_ready, unmarshal, credentials: credentials)
        op&.attach(call)
        call.send_all(requests, marshal)
        call.response
      end
    end

    # A bidi call: a thread sends every element of `requests` (then half-closes) while the
    # responses are read. With a block, yields each response; without, returns a
    # {ResponseStream}. For interleaved control, use {#bidi_call}.
    def bidi_streamer(path, requests, marshal = nil, unmarshal = nil, metadata: {}, deadline: nil,
                      timeout: nil, wait_for_ready: false, return_op: false, credentials: nil, &blk)
      now_or_op(return_op) do |op|
        call = ClientCall.new(self, path, Native::KIND_BIDI_STREAMING, metadata, nil, deadline,
                              timeout, wait_for_ready, unmarshal, credentials: credentials)
        op&.attach(call)
        call.start_writer(requests, marshal)
        responses(call, blk)
      end
    end

    # A streaming call driven by hand: #write, #done_writing, #read, #each, #cancel.
    # @param kind [Symbol] :bidi_streaming or :client_streaming
    # @return [ClientCall]
    def bidi_call(path, marshal = nil, unmarshal = nil, metadata: {}, deadline: nil, timeout: nil,
                  wait_for_ready: false, kind: :bidi_streaming, credentials: nil)
      k = MethodSpec.kind_value(kind)
      unless k >= Native::KIND_CLIENT_STREAMING
        raise ArgumentError, "bidi_call is for :bidi_streaming or :client_streaming"
      end

      ClientCall.new(self, path, k, metadata, nil, deadline, timeout, wait_for_ready, unmarshal,
                     marshal: marshal, credentials: credentials)
    end

    # @api private
    def self.marshal(marshal, message)
      return marshal.call(message) if marshal
      return message if message.is_a?(String)

      raise TypeError, "a raw call sends Strings of bytes, not #{message.class} (or give marshal)"
    end

    # @api private
    def self.unmarshal(unmarshal, bytes)
      unmarshal ? unmarshal.call(bytes) : bytes
    end

    # @api private — starts a call; raises for bad arguments, a closed channel...
    # @return [Integer] the call handle
    def start_call(path, kind, metadata, body, deadline, timeout, wait_for_ready, queue, credentials = nil,
                   tag = 0)
      raise ClosedError, "the channel to #{@target} is closed" if @closed
      raise TypeError, "the method path must be a String, not #{path.class}" unless path.is_a?(String)
      unless credentials.nil? || credentials.is_a?(CallCredentials)
        raise TypeError, "credentials must be SwiftGRPC::CallCredentials, not #{credentials.class}"
      end

      deadline_ns = deadline || timeout ? Runtime.deadline_ns(deadline, timeout) : Native::DEADLINE_DEFAULT
      metadata, flags = Compression.split_call_metadata(metadata)
      table, count, keep = Metadata.encode(metadata)
      out = Runtime.out_handle
      flags |= Native::CALL_WAIT_FOR_READY if wait_for_ready
      if credentials
        rc = start_call_v2(path, kind, table, count, body, deadline_ns, flags, queue, credentials, tag, out)
      else
        rc = Native.swiftgrpc_client_call_start(@handle, path, kind, table, count, body,
                                                body ? body.bytesize : 0, deadline_ns, flags,
                                                queue, nil, tag.zero? ? nil : FFI::Pointer.new(tag), out)
      end
      keep.nil?
      return out.read_uint64 if rc.zero?

      case rc
      when Native::E_WRONG_STATE
        @closed = true
        raise ClosedError, "the channel to #{@target} is closed"
      when Native::E_BAD_HANDLE # destroyed, or (in a forked child) the parent's
        raise ClosedError, "the channel to #{@target} is unusable: #{Native.last_error}"
      else NativeError.raise_for(rc, "swiftgrpc_client_call_start")
      end
    end

    private

    # swiftgrpc_client_call_start_v2: the call with call credentials.
    def start_call_v2(path, kind, table, count, body, deadline_ns, flags, queue, credentials, tag, out)
      path_buf = FFI::MemoryPointer.from_string(path)
      body_buf = body && !body.empty? ? FFI::MemoryPointer.new(:char, body.bytesize).put_bytes(0, body) : nil
      args = FFI::MemoryPointer.new(:char, Native::CALL_ARGS_SIZE)
      args.put_bytes(0, [Native::CALL_ARGS_SIZE, path_buf.address, kind, table ? table.address : 0, count,
                         body_buf ? body_buf.address : 0, body ? body.bytesize : 0, deadline_ns, flags,
                         queue, 0, tag, credentials.handle].pack(Native::CALL_ARGS_LAYOUT))
      rc = Native.swiftgrpc_client_call_start_v2(@handle, args, out)
      [path_buf, body_buf].compact.each(&:free) # the library copied them
      rc
    end

    # Runs the call now, or returns an {Operation} that runs it on #execute.
    def now_or_op(return_op, &run)
      return_op ? Operation.new(run) : run.call(nil)
    end

    # A {ResponseStream}, or with a block: each response yielded, then nil.
    def responses(call, blk)
      stream = ResponseStream.new(call)
      return stream unless blk

      stream.each(&blk)
      nil
    end

    # A unary call: one queue from the pool, waited on by this thread; under a fiber scheduler,
    # the thread's shared queue (see {FiberCalls}).
    # @return [Array(Status, String)] the status and the response bytes
    def unary(path, body, metadata, deadline, timeout, wait_for_ready, op, credentials)
      ev = if Runtime.scheduled?
             fiber_unary(path, body, metadata, deadline, timeout, wait_for_ready, op, credentials)
           else
             thread_unary(path, body, metadata, deadline, timeout, wait_for_ready, op, credentials)
           end
      st = Status.new(ev.status_code, ev.status_message, ev.trailers, ev.metadata)
      op&.finished(st)
      raise Error.for(st.code, st.details, st.metadata) unless st.ok?

      [st, ev.message || "".b]
    end

    # @return [Event] the call's CLIENT_STATUS
    def thread_unary(path, body, metadata, deadline, timeout, wait_for_ready, op, credentials)
      queue = Runtime.take_queue
      begin
        call = start_call(path, Native::KIND_UNARY, metadata, body, deadline, timeout, wait_for_ready,
                          queue, credentials)
      rescue StandardError
        Runtime.give_queue(queue)
        raise
      end
      op&.attach_raw(self, call)
      out = Runtime.out_pointer
      ev = nil
      begin
        loop do
          ev = Runtime.wait_event(queue, out)
          break if ev.is_a?(Event) && ev.type == Native::EVENT_CLIENT_STATUS
          raise NativeError.new("swiftgrpc_queue_next", ev) if ev.is_a?(Integer)
        end
      ensure
        if ev.is_a?(Event) && ev.type == Native::EVENT_CLIENT_STATUS
          Runtime.give_queue(queue)
        else # interrupted (Thread#raise, Timeout, exit): end the call, drop its queue
          Native.swiftgrpc_client_cancel(@handle, call)
          Runtime.destroy_queue(queue)
        end
      end
      ev
    end

    # @return [Event] the call's CLIENT_STATUS
    def fiber_unary(path, body, metadata, deadline, timeout, wait_for_ready, op, credentials)
      calls = FiberCalls.current
      tag = calls.next_tag
      call = start_call(path, Native::KIND_UNARY, metadata, body, deadline, timeout, wait_for_ready,
                        calls.queue, credentials, tag)
      op&.attach_raw(self, call)
      ev = nil
      begin
        ev = calls.wait(tag) # a unary call's one event is its CLIENT_STATUS
        raise NativeError.new("swiftgrpc_queue_next", ev) if ev.is_a?(Integer)
      ensure
        Native.swiftgrpc_client_cancel(@handle, call) unless ev.is_a?(Event)
      end
      ev
    end
  end

  # One streaming client call. Reads and writes may come from two threads (one each): the
  # thread that needs an event and finds nobody waiting on the call's queue waits on it.
  class ClientCall
    # @return [Status, nil] set once the call is over
    attr_reader :status
    # @return [Integer, nil] flags of the messages written from now on: {WriteFlags::NO_COMPRESS}
    #   sends them uncompressed (the gem's ActiveCall#write_flag)
    attr_reader :write_flag

    # @raise [ArgumentError] for a flag swiftgrpc does not support
    def write_flag=(flag)
      WriteFlags.native(flag)
      @write_flag = flag
    end
    # @return [Integer] the library's call handle
    attr_reader :handle

    # @api private
    def initialize(channel, path, kind, metadata, body, deadline, timeout, wait_for_ready,
                   unmarshal, marshal: nil, credentials: nil)
      @channel = channel # referenced so that the channel outlives the call
      @credentials = credentials # and a credentials proc the call
      @kind = kind
      @unmarshal = unmarshal
      @marshal = marshal
      @lock = Mutex.new
      @cv = ConditionVariable.new
      @pulling = false
      @messages = []
      @eos = false
      @reads_pending = 0 # reads asked of the library, not answered yet
      @reading = false   # a thread is in #read
      @send_pending = false
      @send_code = 0
      @half_closed = false
      @status = nil
      @initial_metadata = nil
      @writer_error = nil
      @slots = FFI::MemoryPointer.new(:pointer, Channel::READ_WINDOW + 2)
      @count = FFI::MemoryPointer.new(:size_t)
      @queue = Runtime.take_queue
      begin
        @handle = channel.start_call(path, kind, metadata, body, deadline, timeout,
                                     wait_for_ready, @queue, credentials)
      rescue StandardError
        Runtime.give_queue(@queue)
        raise
      end
      ObjectSpace.define_finalizer(self, ClientCall.finalizer(channel.handle, @handle, @queue))
    end

    # @api private — an abandoned call is cancelled and its queue destroyed
    def self.finalizer(channel, call, queue)
      proc do
        Native.swiftgrpc_client_cancel(channel, call)
        Runtime.destroy_queue(queue)
      end
    end

    # @return [Hash] the response headers' metadata (waits for them)
    def initial_metadata
      await { @initial_metadata || @status }
      @initial_metadata || {}
    end
    alias metadata initial_metadata

    # @return [Hash, nil] the trailing metadata, once the call is over
    def trailing_metadata
      @status&.metadata
    end

    # Sends one request message; waits until HTTP/2 flow control let it out.
    # @return [Boolean] false if the call already ended (its status tells why)
    def write(message)
      body = Channel.marshal(@marshal, message)
      @lock.synchronize do
        raise WrongState, "a write is already in progress on this call" if @send_pending
        raise WrongState, "writes are done (done_writing was called)" if @half_closed
        return false if @status

        rc = Native.swiftgrpc_client_send_message_v2(@channel.handle, @handle, body, body.bytesize,
                                                     WriteFlags.native(@write_flag))
        return false if rc == Native::E_TOKEN_CLOSED
        NativeError.raise_for(rc, "swiftgrpc_client_send_message") if rc.negative?

        @send_pending = true
      end
      await { !@send_pending }
      @send_code.zero?
    end
    alias << write

    # Half-closes: no more request messages. Idempotent.
    def done_writing
      @lock.synchronize do
        return if @half_closed || @status

        @half_closed = true
        Native.swiftgrpc_client_half_close(@channel.handle, @handle)
      end
      nil
    end

    # Reads the next response message.
    # @return [Object, nil] the message, nil at the end of the stream
    # @raise [SwiftGRPC::Error] at the end, if the status is not OK
    def read
      @lock.synchronize do
        raise WrongState, "a read is already in progress on this call" if @reading

        @reading = true
        ask_reads if @messages.size + @reads_pending < Channel::READ_WINDOW / 2
      end
      msg = begin
        await { !@messages.empty? || @eos || @status }
        @lock.synchronize { @messages.shift }
      ensure
        @lock.synchronize { @reading = false }
      end
      return Channel.unmarshal(@unmarshal, msg) if msg

      await { @status }
      raise @writer_error if @writer_error
      raise Error.for(@status.code, @status.details, @status.metadata) unless @status.ok?

      nil
    end

    # Yields every response message.
    def each
      return enum_for(:each) unless block_given?

      while (m = read)
        yield m
      end
      self
    end

    # The response of a client-streaming call (half-closes first).
    def response
      done_writing
      await { @status }
      raise @writer_error if @writer_error
      raise Error.for(@status.code, @status.details, @status.metadata) unless @status.ok?

      Channel.unmarshal(@unmarshal, @final_message || "".b)
    end

    # Cancels the call: the server sees it cancelled; reads end with SwiftGRPC::Cancelled.
    def cancel
      Native.swiftgrpc_client_cancel(@channel.handle, @handle) unless @status
      nil
    end

    # @return [Boolean] whether the call ended with CANCELLED
    def cancelled?
      !@status.nil? && @status.code == StatusCodes::CANCELLED
    end

    # Waits for the end of the call. @return [Status]
    def wait
      await { @status }
      @status
    end

    # @api private
    def send_all(requests, marshal)
      @marshal = marshal
      requests.each { |r| break unless write(r) }
      done_writing
    rescue StandardError => e
      cancel
      @writer_error = e
      raise
    end

    # @api private — a thread sends `requests`, then half-closes
    def start_writer(requests, marshal)
      @marshal = marshal
      @writer = Thread.new do
        requests.each { |r| break unless write(r) }
        done_writing
      rescue StandardError => e
        @writer_error = e
        cancel
      end
      @writer.report_on_exception = false
      @writer.name = "swiftgrpc-bidi-writer"
    end

    private

    # Keeps READ_WINDOW reads asked (under the lock).
    def ask_reads
      return if @eos || @status

      (Channel::READ_WINDOW - @reads_pending - @messages.size).times do
        break unless Native.swiftgrpc_client_read(@channel.handle, @handle).zero?

        @reads_pending += 1
      end
    end

    # Waits until the block is true, taking events (in batches) from the call's queue meanwhile.
    def await
      loop do
        mine = @lock.synchronize do
          return if yield
          if @pulling # another thread takes the events: wait for its news
            @cv.wait(@lock, 0.25)
            next false
          end
          @pulling = true
        end
        next unless mine

        evs = nil
        begin
          evs = Runtime.wait_events(@queue, @slots, @count)
        ensure
          @lock.synchronize do
            @pulling = false
            evs.each { |ev| apply(ev) } if evs.is_a?(Array)
            @cv.broadcast
          end
        end
        raise NativeError.new("swiftgrpc_queue_next_batch", evs) if evs.is_a?(Integer)
      end
    rescue Exception # rubocop:disable Lint/RescueException -- interrupted: end the call
      cancel
      raise
    end

    def apply(ev)
      case ev.type
      when Native::EVENT_CLIENT_INITIAL_METADATA
        @initial_metadata = ev.metadata
      when Native::EVENT_CLIENT_MESSAGE
        @reads_pending -= 1
        if ev.message then @messages << ev.message else @eos = true end
      when Native::EVENT_CLIENT_SEND_DONE
        @send_pending = false
        @send_code = ev.status_code
      when Native::EVENT_CLIENT_STATUS
        @initial_metadata ||= ev.metadata
        @final_message = ev.message
        @status = Status.new(ev.status_code, ev.status_message, ev.trailers, ev.metadata)
        @reads_pending = 0
        @send_pending = false
        ObjectSpace.undefine_finalizer(self)
        Runtime.give_queue(@queue) # the status is the call's last event: the queue is drained
      end
    end
  end

  # The responses of a server-streaming or bidi call: Enumerable (once), with #cancel and the
  # call's metadata.
  class ResponseStream
    include Enumerable

    # @api private
    attr_reader :call

    def initialize(call)
      @call = call
    end

    # Yields each response; raises the call's {SwiftGRPC::Error} at the end if not OK.
    def each(&blk)
      return enum_for(:each) unless blk

      @call.each(&blk)
      self
    end

    # @return [Object] the next response
    # @raise [StopIteration] at the end of the stream
    def next
      m = @call.read
      raise StopIteration, "the response stream is over" if m.nil?

      m
    end

    def cancel
      @call.cancel
    end

    def cancelled?
      @call.cancelled?
    end

    def initial_metadata
      @call.initial_metadata
    end
    alias metadata initial_metadata

    def trailing_metadata
      @call.trailing_metadata
    end

    def status
      @call.status
    end
  end

  # A call prepared with `return_op: true`: #execute runs it; afterwards the metadata, the
  # status and #cancel (from another thread, while #execute waits) are available.
  class Operation
    # @return [Status, nil]
    attr_reader :status

    def initialize(run)
      @run = run
      @call = nil
      @raw = nil
      @status = nil
      @cancel_requested = false
      @lock = Mutex.new
      @changed = ConditionVariable.new
      @returned = false
    end

    # @api private — a proc given the run of the call, which it calls (interceptors)
    attr_writer :around

    # Runs the call. @return [Object] what the call method would have returned
    def execute
      run = @lock.synchronize do
        raise WrongState, "this operation was already executed" if @run.nil?

        r = @run
        @run = nil
        r
      end
      begin
        @around ? @around.call(proc { run.call(self) }) : run.call(self)
      ensure
        @lock.synchronize do
          @returned = true
          @changed.broadcast
        end
      end
    end

    # The grpc gem's: waits until the call executed (from another thread) is over; returns at
    # once if it was never executed.
    def wait
      call = @lock.synchronize do
        return nil unless @run.nil?

        @changed.wait(@lock) while @status.nil? && @call.nil? && !@returned
        @call
      end
      call&.wait if @status.nil?
      nil
    end

    # @return [Hash, nil] response headers' metadata
    def metadata
      @status&.initial_metadata || @call&.initial_metadata
    end

    # @return [Hash, nil]
    def trailing_metadata
      (@status || @call&.status)&.metadata
    end

    def cancel
      @cancel_requested = true
      if @call then @call.cancel
      elsif @raw then Native.swiftgrpc_client_cancel(@raw[0].handle, @raw[1])
      end
    end

    def cancelled?
      s = @status || @call&.status
      !s.nil? && s.code == StatusCodes::CANCELLED
    end

    # @return [Integer, nil] the flags of the request messages written from now on (the gem's)
    attr_reader :write_flag

    # Sets the flags of the request messages written from now on ({WriteFlags::NO_COMPRESS}),
    # as the gem's Operation#write_flag= (a request Enumerable may set it between messages).
    # @raise [ArgumentError] for a flag swiftgrpc does not support
    def write_flag=(flag)
      WriteFlags.native(flag)
      @write_flag = flag
      @call.write_flag = flag if @call
    end

    # @api private
    def attach(call)
      @lock.synchronize do
        @call = call
        call.write_flag = @write_flag if @write_flag
        @changed.broadcast
      end
      call.cancel if @cancel_requested
    end

    # @api private
    def attach_raw(channel, call)
      @raw = [channel, call]
      Native.swiftgrpc_client_cancel(channel.handle, call) if @cancel_requested
    end

    # @api private
    def finished(status)
      @lock.synchronize do
        @status = status
        @changed.broadcast
      end
    end
  end

  # A client stub: the methods of a service, called through a {Channel}. Like the grpc gem's
  # GRPC::ClientStub, and built the same way from a service:
  #
  #   Stub = SwiftGRPC::ClientStub.for(Helloworld::Greeter::Service)
  #   stub = Stub.new("localhost:50051")
  #   reply = stub.say_hello(Helloworld::HelloRequest.new(name: "you"), timeout: 5)
  class ClientStub
    # @return [Channel]
    attr_reader :channel

    # @param target [String, Channel]
    # @param credentials [ChannelCredentials, Symbol] TLS settings, or :this_channel_is_insecure
    # @param channel_override [Channel] a channel to use instead of a new one
    # @param timeout [Numeric, nil] default per-call timeout in seconds
    # @param channel_args [Hash] the gem's channel arguments; those understood:
    #   "grpc.ssl_target_name_override", "grpc.default_authority", "grpc.primary_user_agent"
    # @param interceptors [Array<ClientInterceptor>] see {ClientInterceptor}
    # @param propagate_mask [nil] the gem's propagation of a parent call: not supported (refused)
    # @param options [Hash] {Channel} options
    def initialize(target, credentials = :this_channel_is_insecure, channel_override: nil,
                   timeout: nil, channel_args: {}, interceptors: [], propagate_mask: nil, **options)
      unless propagate_mask.nil?
        raise ArgumentError, "propagate_mask: swiftgrpc does not propagate a parent call's deadline " \
                             "or cancellation (the gem's parent:/propagate_mask)"
      end
      @interceptors = Interceptors.new(interceptors)
      creds = case credentials
              when :this_channel_is_insecure then nil
              when ChannelCredentials then credentials
              else raise TypeError, "credentials must be SwiftGRPC::ChannelCredentials or " \
                                    ":this_channel_is_insecure, not #{credentials.inspect}"
              end
      @channel = channel_override || (target.is_a?(Channel) ? target : nil)
      options = options.merge(timeout: timeout) if timeout
      options = options.merge(ClientStub.gem_channel_args(channel_args))
      @channel ||= Channel.new(target, credentials: creds, **options)
    end

    GEM_CHANNEL_ARGS = { "grpc.ssl_target_name_override" => :ssl_target_name_override,
                         "grpc.default_authority" => :authority,
                         "grpc.primary_user_agent" => :user_agent,
                         "grpc.default_compression_algorithm" => :compression,
                         "grpc.max_receive_message_length" => :max_receive_message_size,
                         "grpc.max_send_message_length" => :max_send_message_size,
                         "grpc.max_metadata_size" => :max_metadata_size,
                         "grpc.keepalive_time_ms" => :keepalive_time,
                         "grpc.keepalive_timeout_ms" => :keepalive_timeout,
                         "grpc.keepalive_permit_without_calls" => :keepalive_permit_without_calls,
                         "grpc.initial_reconnect_backoff_ms" => :initial_backoff,
                         "grpc.max_reconnect_backoff_ms" => :max_backoff,
                         "grpc.min_reconnect_backoff_ms" => :connect_timeout,
                         "grpc.lb_policy_name" => :lb_policy,
                         "grpc.dns_min_time_between_resolutions_ms" => :min_time_between_resolutions }.freeze
    # The gem's CompressionOptions#to_channel_arg_hash adds it: swiftgrpc accepts every
    # algorithm, so only "all three" (7) is honoured.
    ENABLED_ALGORITHMS_ARG = "grpc.compression_enabled_algorithms_bitset"

    # @api private — {Channel} options from the gem's channel_args; an unknown one is refused
    def self.gem_channel_args(channel_args)
      raise TypeError, "channel_args must be a Hash, not #{channel_args.class}" unless channel_args.is_a?(Hash)

      channel_args.reject { |k, v| k.to_s == ENABLED_ALGORITHMS_ARG && enabled_all?(v) }.to_h do |k, v|
        name = GEM_CHANNEL_ARGS.fetch(k.to_s) do
          raise ArgumentError, "channel argument #{k.inspect} is not supported by swiftgrpc; " \
                               "supported: #{GEM_CHANNEL_ARGS.keys.join(', ')} (or give Channel options)"
        end
        # The gem's *_ms arguments are milliseconds; Channel options take seconds.
        v = v / 1000.0 if k.to_s.end_with?("_ms") && v.is_a?(Numeric)
        v = (1 << 32) - 1 if v == -1 && %i[max_receive_message_size max_send_message_size].include?(name)
        v = [1, true].include?(v) if name == :keepalive_permit_without_calls # the gem's 0 / 1
        [name, v]
      end
    end

    # @api private
    def self.enabled_all?(bitset)
      return true if bitset == 7

      raise ArgumentError, "channel argument #{ENABLED_ALGORITHMS_ARG.inspect} = #{bitset.inspect}: swiftgrpc " \
                           "always accepts identity, deflate and gzip (only 7 is supported)"
    end

    # The gem's call methods, through the stub's interceptors. Keywords: `metadata:`,
    # `deadline:` (a Time), `timeout:` (seconds), `wait_for_ready:`, `return_op:`,
    # `credentials:` (CallCredentials); `parent:` (the gem's call propagation) is refused.
    %i[request_response server_streamer client_streamer bidi_streamer].each do |name|
      define_method(name) do |path, arg, marshal = nil, unmarshal = nil, parent: nil, metadata: {}, **kw, &blk|
        unless parent.nil?
          raise ArgumentError, "parent: swiftgrpc does not propagate a parent call's deadline or cancellation"
        end
        return @channel.public_send(name, path, arg, marshal, unmarshal, metadata: metadata, **kw, &blk) if @interceptors.none?

        intercepted(name, path, arg, marshal, unmarshal, metadata, kw, blk)
      end
    end

    private

    # A call inside the interceptors: they see (and may add to) a copy of the metadata, which
    # is what the call sends; with return_op, they run when the Operation is executed.
    def intercepted(name, path, arg, marshal, unmarshal, metadata, kw, blk)
      raise TypeError, "metadata must be a Hash, not #{metadata.class}" unless metadata.is_a?(Hash)

      md = metadata.dup
      deadline = kw[:deadline] || (kw[:timeout] && Time.now + kw[:timeout])
      args = { method: path, call: InterceptableView.new(deadline), metadata: md }
      args[name == :request_response || name == :server_streamer ? :request : :requests] = arg
      run = proc { @channel.public_send(name, path, arg, marshal, unmarshal, metadata: md, **kw, &blk) }
      return @interceptors.intercept(name, args, &run) unless kw[:return_op]

      op = run.call
      op.around = proc { |inner| @interceptors.intercept(name, args, &inner) }
      op
    end

    public

    # A stub class with one method per rpc of `service` (a class declared with
    # SwiftGRPC::GenericService or GRPC::GenericService): `say_hello(request, metadata: {},
    # deadline: nil, timeout: nil, wait_for_ready: false, return_op: false)`; streaming
    # requests are Enumerables, streaming responses {ResponseStream}s (or yielded to a block).
    # @return [Class]
    def self.for(service)
      specs = MethodSpec.from_service(service)
      Class.new(ClientStub) do
        specs.each do |spec|
          path = spec.path
          enc = spec.encode_request
          dec = spec.decode_response
          call = { Native::KIND_UNARY => :request_response,
                   Native::KIND_SERVER_STREAMING => :server_streamer,
                   Native::KIND_CLIENT_STREAMING => :client_streamer,
                   Native::KIND_BIDI_STREAMING => :bidi_streamer }.fetch(spec.kind)
          # (options as keywords, or as the gem's positional Hash)
          define_method(spec.handler_name) do |request, opts = {}, **kw, &blk|
            kw = opts.transform_keys(&:to_sym).merge(kw) unless opts.empty?
            public_send(call, path, request, enc, dec, **kw, &blk)
          end
        end
      end
    end
  end
end
