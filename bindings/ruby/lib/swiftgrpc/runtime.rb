# frozen_string_literal: true

module SwiftGRPC
  # A point in time as the grpc gem's GRPC::Core::TimeSpec (seconds and nanoseconds since the
  # epoch), for deadlines: {INFINITE_FUTURE} is no deadline, {ZERO} and {INFINITE_PAST} have
  # passed. A Time does the same.
  class TimeSpec
    attr_reader :tv_sec, :tv_nsec

    def initialize(tv_sec, tv_nsec = 0)
      @tv_sec = tv_sec
      @tv_nsec = tv_nsec
    end

    # @return [Float] seconds since the epoch (+-Infinity for the infinite ones)
    def to_f
      @tv_sec.to_f + (@tv_nsec / 1e9)
    end

    # @return [Time]
    def to_time
      Time.at(@tv_sec, @tv_nsec, :nsec)
    end

    def inspect
      "#<#{self.class} #{to_f}>"
    end

    ZERO = new(0).freeze
    INFINITE_FUTURE = new(Float::INFINITY).freeze
    INFINITE_PAST = new(-Float::INFINITY).freeze
  end

  # One event taken from a queue, copied into Ruby objects (the C event is freed at once).
  # `metadata` and `trailers` are Hashes (see {Metadata.decode}); `method`, `authority` and
  # `peer` are read for server CALL events only (a client knows its call's method).
  # `auth` (server CALL events): the connection's auth properties, [name, value] pairs.
  # CREDENTIALS_REQUEST events: `method` (the method's name), `authority` (the service URL)
  # and `tag` (the plugin's user data). `tag` of other events: the client call's, or the one
  # bound to a server call (swiftgrpc_call_set_tag), as an Integer (0: none).
  Event = Struct.new(:type, :kind, :token, :server, :method, :authority, :peer, :metadata,
                     :deadline_ns, :message, :status_code, :channel, :status_message, :trailers,
                     :auth, :tag, :message_flags)

  # Request, response and trailing metadata: Hash{String => String or Array<String>}.
  # Keys are lower-case ASCII; values under keys ending in "-bin" are binary strings, the others
  # printable ASCII. Symbol keys are accepted; a repeated key gives an Array of values.
  module Metadata
    EMPTY = {}.freeze
    NONE = [nil, 0, nil].freeze # what {encode} returns for no metadata

    # Reads `count` swiftgrpc_metadata entries at address `addr` from `blk`, a copy of the
    # event block that starts at address `base`.
    # @return [Hash{String=>String,Array<String>}]
    def self.decode(blk, base, addr, count)
      return {} if count.zero?

      words = blk.byteslice(addr - base, count * Native::METADATA_SIZE).unpack("Q*")
      out = {}
      i = 0
      while i < words.size
        key = blk.byteslice(words[i] - base, words[i + 1])
        value = blk.byteslice(words[i + 2] - base, words[i + 3])
        key.force_encoding(Encoding::UTF_8)
        # A peer may send any bytes: UTF-8 text stays UTF-8, anything else is passed through
        # as a binary String (never an invalid UTF-8 one that raises later).
        unless key.end_with?("-bin")
          value.force_encoding(Encoding::UTF_8)
          value.force_encoding(Encoding::BINARY) unless value.valid_encoding?
        end
        prev = out[key]
        out[key] = if prev.nil? then value
                   elsif prev.is_a?(Array) then prev << value
                   else [prev, value]
                   end
        i += 4
      end
      out
    end

    # Reads `count` swiftgrpc_metadata entries as [key, binary value] pairs, in order (from a
    # copy of the event block, as {decode}).
    # @return [Array<Array(String, String)>]
    def self.pairs(blk, base, addr, count)
      return [] if count.zero?

      words = blk.byteslice(addr - base, count * Native::METADATA_SIZE).unpack("Q*")
      words.each_slice(4).map do |kp, kl, vp, vl|
        [blk.byteslice(kp - base, kl).force_encoding(Encoding::UTF_8), blk.byteslice(vp - base, vl)]
      end
    end

    # Lays metadata out as a C array of swiftgrpc_metadata.
    # @param md [Hash, Array<Array(String, String)>, nil]
    # @return [Array(FFI::MemoryPointer, Integer, Object)] the array, its count, and the buffer
    #   that must stay referenced while the library reads it; [nil, 0, nil] when empty
    # @raise [TypeError] for a key or value that is not a String or Symbol
    def self.encode(md)
      return NONE if md.nil? || md.empty?

      pairs = []
      each_pair(md) { |k, v| pairs << [k, v] }
      return NONE if pairs.empty?

      blob = String.new(capacity: 64 * pairs.size, encoding: Encoding::BINARY)
      offsets = pairs.map do |k, v|
        ko = blob.bytesize
        blob << k.b
        vo = blob.bytesize
        blob << v.b
        [ko, k.bytesize, vo, v.bytesize]
      end
      buf = FFI::MemoryPointer.new(:char, [blob.bytesize, 1].max)
      buf.put_bytes(0, blob)
      base = buf.address
      table = FFI::MemoryPointer.new(:char, Native::METADATA_SIZE * pairs.size)
      table.put_bytes(0, offsets.flat_map { |ko, kl, vo, vl| [base + ko, kl, base + vo, vl] }
                                .pack("Q*"))
      [table, pairs.size, buf]
    end

    # Yields each (key, value) pair of `md` as Strings, flattening Array values.
    def self.each_pair(md)
      unless md.respond_to?(:each)
        raise TypeError, "metadata must be a Hash or an Array of [key, value] pairs, not " \
                         "#{md.class}"
      end
      md.each do |pair|
        k, v = pair
        k = string(k, "metadata key")
        if v.is_a?(Array)
          v.each { |x| yield k, string(x, "metadata value of #{k.inspect}") }
        else
          yield k, string(v, "metadata value of #{k.inspect}")
        end
      end
    end

    # @return [String]
    def self.string(x, what)
      return x if x.is_a?(String)
      return x.to_s if x.is_a?(Symbol)

      raise TypeError, "#{what} must be a String, not #{x.class}"
    end
  end

  # The process-wide library runtime: created on first use, destroyed at exit after every
  # server and channel it carries. Also a pool of drained event queues for client calls.
  #
  # Waits for a client call's events are fiber-aware: under a fiber scheduler (Ruby >= 3.0's
  # Fiber.scheduler, e.g. the async gem's, in a non-blocking fiber) a call waits through the
  # scheduler on its queue's descriptor (swiftgrpc_queue_fd), so one thread runs many calls at
  # once; elsewhere the thread waits in swiftgrpc_queue_next without the VM lock.
  module Runtime
    SCHEDULERS = Fiber.respond_to?(:scheduler) # Ruby >= 3.0
    POLL_MS = 250 # a thread's waits are bounded, so that Thread#raise, Timeout and Ctrl-C reach them
    @lock = Mutex.new
    @handle = nil
    @pool = []
    @ios = {} # queue handle => IO on its descriptor, made on a fiber's first wait
    @closers = {}
    @next_closer = 0
    @loop_threads = Integer(ENV.fetch("SWIFTGRPC_LOOP_THREADS", "0"))

    class << self
      # Event-loop threads of the runtime (0 = one per core). Set before first use.
      attr_accessor :loop_threads

      # @return [Integer] the runtime handle, created on first use
      def handle
        forked?
        @handle || @lock.synchronize do
          @handle ||= begin
            @pid = Process.pid
            out = FFI::MemoryPointer.new(:uint64)
            NativeError.check(Native.swiftgrpc_runtime_create(@loop_threads, out),
                              "swiftgrpc_runtime_create")
            # Registered on first use, so it runs before the exit handlers registered earlier
            # (minitest/autorun's among them) are done... after those registered later.
            at_exit { SwiftGRPC::Runtime.shutdown }
            out.read_uint64
          end
        end
      end

      # @return [Integer] a new event queue
      def new_queue
        out = FFI::MemoryPointer.new(:uint64)
        NativeError.check(Native.swiftgrpc_queue_create(handle, out), "swiftgrpc_queue_create")
        out.read_uint64
      end

      # A fork that did not go through Process._fork (Process.daemon; Ruby 3.0, which has no
      # Process._fork) is seen here, by the process id: the child resets as after any fork.
      def forked?
        return false if @pid.nil? || @pid == Process.pid

        after_fork_in_child
        true
      end

      # A drained queue from the pool (or a new one), for one client call at a time.
      def take_queue
        forked?
        @lock.synchronize { @pool.pop } || new_queue
      end

      # Gives back a queue whose calls have all delivered their last event (destroyed if the
      # pool is full).
      def give_queue(queue)
        kept = @lock.synchronize { @handle && @pool.size < 64 && @pool << queue }
        destroy_queue(queue) unless kept
      end

      # Destroys a queue that is not pooled. Takes no lock (finalizers call it).
      def destroy_queue(queue)
        @ios.delete(queue)
        Native.swiftgrpc_queue_destroy(queue)
      end

      # Registers a block run (once) by {shutdown} before the runtime is destroyed: servers
      # stop and channels close there. @return [Integer] a key for {unregister}
      def register(&blk)
        @lock.synchronize do
          @next_closer += 1
          @closers[@next_closer] = blk
          @next_closer
        end
      end

      # Takes no lock: finalizers call it, and Ruby runs them where a Mutex may not be taken
      # ("can't be called from trap context"). One Hash#delete is atomic under the GVL.
      def unregister(key)
        @closers.delete(key)
      end

      # In a forked child: the library abandoned the parent's runtime (its threads are not
      # here; its handles are refused, their destroy does nothing); the next server or channel
      # makes a new one. Servers and channels made before fork raise there.
      def after_fork_in_child
        @lock = Mutex.new
        @pid = nil
        @handle = nil
        @pool = []
        @ios = {}
        @closers = {}
      end

      # Stops every server, closes every channel and destroys the runtime. Run at exit.
      def shutdown
        closers = @lock.synchronize do
          c = @closers.values
          @closers.clear
          c
        end
        closers.each do |c|
          c.call
        rescue StandardError
          nil
        end
        h = @lock.synchronize do
          x = @handle
          @handle = nil
          @pool.clear
          @ios.clear
          x
        end
        Native.swiftgrpc_runtime_destroy(h) if h
      end

      # Takes the next event of `queue`, waiting up to `timeout_ms` (< 0: forever).
      # @return [Event, Integer] the event, or E_TIMEOUT / E_SHUTDOWN / another negative code
      def next_event(queue, timeout_ms, out = out_pointer)
        rc = Native.swiftgrpc_queue_next(queue, timeout_ms, out)
        rc.negative? ? rc : take_out(out)
      end

      # Waits for the next event of `queue`, fiber-aware (see {Runtime}): under a scheduler,
      # other fibers run meanwhile. A thread waits in slices of POLL_MS, so that Thread#raise,
      # Timeout and Ctrl-C reach it; a fiber's wait is the scheduler's, interruptible as it is.
      # @return [Event, Integer] the event, or a negative code other than E_TIMEOUT
      def wait_event(queue, out = out_pointer)
        unless scheduled?
          loop do
            ev = next_event(queue, POLL_MS, out)
            return ev unless ev == Native::E_TIMEOUT
          end
        end
        rc = fiber_wait(queue) { Native.queue_take_now(queue, 0, out) }
        rc.negative? ? rc : take_out(out)
      end

      # Takes up to `slots.size / 8` events of `queue` at once (swiftgrpc_queue_next_batch: one
      # call, one wake-up), waiting up to `timeout_ms` for the first.
      # @param slots [FFI::MemoryPointer] room for the event pointers, reused by the caller
      # @param count [FFI::MemoryPointer] a size_t, reused
      # @return [Array<Event>, Integer] the events, or a negative result (E_TIMEOUT, E_SHUTDOWN)
      def next_events(queue, timeout_ms, slots, count)
        rc = Native.swiftgrpc_queue_next_batch(queue, timeout_ms, slots, slots.size / 8, count)
        rc.negative? ? rc : take_all(slots, count)
      end

      # {wait_event} for a batch, as {next_events} takes it.
      # @return [Array<Event>, Integer]
      def wait_events(queue, slots, count)
        unless scheduled?
          loop do
            evs = next_events(queue, POLL_MS, slots, count)
            return evs unless evs == Native::E_TIMEOUT
          end
        end
        rc = fiber_wait(queue) { Native.queue_take_batch_now(queue, 0, slots, slots.size / 8, count) }
        rc.negative? ? rc : take_all(slots, count)
      end

      # Whether this fiber's waits go through a fiber scheduler.
      def scheduled?
        SCHEDULERS && !Fiber.scheduler.nil? && !Fiber.current.blocking?
      end

      # Polls with `take` (a take with a zero timeout: E_TIMEOUT while the queue is empty),
      # waiting between polls for the queue's descriptor through the scheduler (IO#wait_readable
      # is its io_wait; no timeout, which would cost a scheduler timer per wait). The descriptor
      # is signalled when an event lands on the empty queue and at the queue's shutdown; it is
      # cleared before the next poll, so no event is missed (a signal left from an event taken
      # earlier costs one extra poll).
      # @return [Integer] take's result: 0 or a negative code other than E_TIMEOUT
      def fiber_wait(queue)
        io = queue_io(queue)
        return io if io.is_a?(Integer)

        loop do
          rc = yield
          return rc unless rc == Native::E_TIMEOUT

          io.wait_readable
          io.read_nonblock(8, exception: false)
        end
      end

      # @return [IO, Integer] an IO on the queue's descriptor (the library owns it: the IO never
      #   closes it), or the error of swiftgrpc_queue_fd
      def queue_io(queue)
        @ios[queue] ||= begin
          fd = FFI::MemoryPointer.new(:int)
          rc = Native.swiftgrpc_queue_fd(queue, fd)
          return rc if rc.negative?

          IO.for_fd(fd.read_int, autoclose: false)
        end
      end

      # The event a take left in `out`, copied and freed.
      def take_out(out)
        ptr = out.read_pointer
        begin
          decode(ptr)
        ensure
          Native.swiftgrpc_event_free(ptr)
        end
      end

      # The `count` events a batch take left in `slots`, copied and freed.
      def take_all(slots, count)
        slots.get_array_of_pointer(0, count.read(:size_t)).map do |ptr|
          decode(ptr)
        ensure
          Native.swiftgrpc_event_free(ptr)
        end
      end

      # Copies a C event into an {Event}.
      def decode(ptr)
        f = ptr.get_bytes(0, Native::EVENT_SIZE).unpack(Native::EVENT_LAYOUT)
        # f: 0 type, 1 kind, 2 token, 3 server, 4 method, 5 len, 6 authority, 7 len, 8 peer,
        # 9 len, 10 metadata, 11 count, 12 deadline, 13 message, 14 len, 15 has_message,
        # 16 status, 17 channel, 18 tag, 19 status_message, 20 len, 21 trailers, 22 count,
        # 23 auth, 24 count, 25 message_flags
        type = f[0]
        if type == Native::EVENT_CREDENTIALS_REQUEST
          return Event.new(type, 0, f[2], 0, FFI::Pointer.new(f[4]).get_bytes(0, f[5]).force_encoding(Encoding::UTF_8),
                           FFI::Pointer.new(f[6]).get_bytes(0, f[7]).force_encoding(Encoding::UTF_8),
                           nil, nil, 0, nil, 0, 0, nil, nil, nil, f[18])
        end
        message = f[15].zero? ? nil : FFI::Pointer.new(f[13]).get_bytes(0, f[14])
        base = ptr.address
        # A queued event is one block: the struct, its metadata arrays, every string, the
        # message last. One copy of what precedes the message, sliced.
        blk = ptr.get_bytes(0, f[13] - base) if type == Native::EVENT_CALL || type == Native::EVENT_CLIENT_STATUS || f[11].positive?
        if type == Native::EVENT_CALL || type >= Native::EVENT_CLIENT_INITIAL_METADATA
          metadata = f[11].zero? ? Metadata::EMPTY : Metadata.decode(blk, base, f[10], f[11])
        end
        if type == Native::EVENT_CALL
          method = blk.byteslice(f[4] - base, f[5]).force_encoding(Encoding::UTF_8)
          authority = blk.byteslice(f[6] - base, f[7]).force_encoding(Encoding::UTF_8)
          peer = blk.byteslice(f[8] - base, f[9]).force_encoding(Encoding::UTF_8)
          auth = Metadata.pairs(blk, base, f[23], f[24])
        elsif type == Native::EVENT_CLIENT_STATUS
          status_message = blk.byteslice(f[19] - base, f[20]).force_encoding(Encoding::UTF_8)
          trailers = f[22].zero? ? {} : Metadata.decode(blk, base, f[21], f[22])
        end
        Event.new(type, f[1], f[2], f[3], method, authority, peer, metadata, f[12], message,
                  f[16], f[17], status_message, trailers, auth, f[18], f[25])
      end

      # A pointer-sized out parameter owned by the calling thread (reused: no allocation).
      def out_pointer
        Thread.current[:swiftgrpc_out] ||= FFI::MemoryPointer.new(:pointer)
      end

      # A second one, for a call handle while an event pointer is in use.
      def out_handle
        Thread.current[:swiftgrpc_out_handle] ||= FFI::MemoryPointer.new(:uint64)
      end

      # @return [Integer] now, on the clock of event deadlines (CLOCK_MONOTONIC ns)
      def now_ns
        Native.swiftgrpc_now_ns
      end

      # An absolute library deadline from `deadline:` (Time or seconds since the epoch) or
      # `timeout:` (seconds from now); DEADLINE_DEFAULT when neither is given.
      def deadline_ns(deadline, timeout)
        if timeout
          raise TypeError, "timeout must be Numeric, not #{timeout.class}" unless timeout.is_a?(Numeric)
          raise ArgumentError, "timeout is NaN" if timeout.respond_to?(:nan?) && timeout.nan?
          return Native::DEADLINE_NONE if timeout.respond_to?(:infinite?) && timeout.infinite? == 1

          return clamp(now_ns + nanos(timeout))
        end
        return Native::DEADLINE_DEFAULT if deadline.nil?

        secs = case deadline
               when Time, TimeSpec then deadline.to_f
               when Numeric then deadline.to_f
               else raise TypeError, "deadline must be a Time, not #{deadline.class}"
               end
        raise ArgumentError, "deadline is NaN" if secs.nan?
        return Native::DEADLINE_NONE if secs.infinite? == 1
        return 1 if secs.infinite? == -1

        clamp(now_ns + nanos(secs - Time.now.to_f))
      end

      # Seconds as nanoseconds, within +-DEADLINE_NONE (1e300 seconds is no error).
      def nanos(secs)
        ns = secs * 1e9
        return Native::DEADLINE_NONE if ns >= Native::DEADLINE_NONE
        return -Native::DEADLINE_NONE if ns <= -Native::DEADLINE_NONE

        ns.floor
      end

      # Keeps a computed deadline inside (0, DEADLINE_NONE): 0 would mean "the default"; a huge
      # timeout is a deadline just short of "none", as grpcio's is.
      def clamp(ns)
        return Native::DEADLINE_NONE - 1 if ns >= Native::DEADLINE_NONE

        ns < 1 ? 1 : ns
      end
    end
  end

  # The unary calls of one thread's fibers under a fiber scheduler, on one shared queue: each
  # call is started with a tag of its own, and one of the waiting fibers at a time (the poller)
  # waits on the queue's descriptor through the scheduler, takes every event there is, and
  # hands each to the fiber whose tag it carries (a Thread::Queue, which the scheduler knows).
  # When the poller's own call is answered, polling passes to another waiting fiber. One
  # descriptor wait per batch, instead of a queue, a descriptor registration and a wait per
  # call.
  class FiberCalls
    POLL = Object.new.freeze # handed to a waiting fiber: it polls from now on
    BATCH = 64

    # The calling thread's (shared by its fibers: a thread variable, not the fiber-local
    # Thread#[]), made on first use, and again in a forked child.
    def self.current
      t = Thread.current
      fc = t.thread_variable_get(:swiftgrpc_fiber_calls)
      return fc if fc && fc.pid == Process.pid

      t.thread_variable_set(:swiftgrpc_fiber_calls, new)
    end

    attr_reader :queue, :pid

    def initialize
      @pid = Process.pid
      @queue = Runtime.new_queue
      @waiters = {} # tag => Thread::Queue of a fiber whose call is not answered yet
      @polling = false
      @next_tag = 0
      @slots = FFI::MemoryPointer.new(:pointer, BATCH)
      @count = FFI::MemoryPointer.new(:size_t)
      ObjectSpace.define_finalizer(self, FiberCalls.destroyer(@queue, @pid))
    end

    # The queue goes with the thread (calls cannot outlive their fibers).
    def self.destroyer(queue, pid)
      proc { Runtime.destroy_queue(queue) if Process.pid == pid }
    end

    # @return [Integer] a tag for the next call (never 0)
    def next_tag
      @next_tag += 1
    end

    # Waits for the CLIENT_STATUS of the call started with `tag`. Interrupted (the fiber
    # stopped, an exception raised into it), the call is forgotten (its events are dropped) and
    # polling passes on; the caller cancels the call.
    # @return [Event, Integer] the event, or the negative result of a take
    def wait(tag)
      fiber = Fiber.current
      box = fiber.instance_variable_get(:@swiftgrpc_box) ||
            fiber.instance_variable_set(:@swiftgrpc_box, Thread::Queue.new)
      @waiters[tag] = box
      mine = nil
      poller = !@polling # nobody polls: this fiber does
      @polling = true
      begin
        until mine
          if poller
            mine = poll(tag)
          else
            ev = box.pop
            ev.equal?(POLL) ? poller = true : mine = ev
          end
        end
        mine
      ensure
        @waiters.delete(tag)
        # Interrupted, this fiber's box may still hold its event or the polling it was handed.
        until box.empty?
          poller = true if box.pop(true).equal?(POLL)
        end
        pass_polling if poller
      end
    end

    private

    # Takes events until the one of `tag` arrives; the others go to their fibers.
    def poll(tag)
      loop do
        rc = Runtime.fiber_wait(@queue) { Native.queue_take_batch_now(@queue, 0, @slots, BATCH, @count) }
        return rc if rc.negative?

        mine = nil
        Runtime.take_all(@slots, @count).each do |ev|
          if ev.tag == tag
            mine = ev
          else
            @waiters.delete(ev.tag)&.push(ev) # none: a call forgotten after an interruption
          end
        end
        return mine if mine
      end
    end

    # Polling passes to a fiber still waiting (its event not handed out yet), or ends.
    def pass_polling
      @waiters.each_value do |box|
        box.push(POLL)
        return
      end
      @polling = false
    end
  end

  # Process._fork (Ruby >= 3.1) is what fork, Process.fork and Kernel#fork call: the child
  # resets the runtime (see Runtime.after_fork_in_child) before any of its code runs.
  module ForkHook
    def _fork
      pid = super
      SwiftGRPC::Runtime.after_fork_in_child if pid.zero?
      pid
    end
  end
  Process.singleton_class.prepend(ForkHook) if Process.respond_to?(:_fork)
end
