# frozen_string_literal: true

# The grpc gem's API on swiftgrpc. Code written for the gem runs with one line changed:
#
#   require "swiftgrpc/grpc"     # instead of: require "grpc"
#
# It defines the gem's GRPC module, backed by swiftgrpc: GRPC::GenericService (what generated
# `*_services_pb.rb` files include), GRPC::ClientStub, GRPC::RpcServer, GRPC::BadStatus and its
# per-code subclasses, the interceptor classes, GRPC::Core::StatusCodes, TimeConsts,
# ChannelCredentials, ServerCredentials, CallCredentials, Channel, CompressionOptions,
# MetadataKeys, WriteFlags and ConnectivityStates, GRPC.logger. A later `require "grpc"` (the
# generated files make one) then loads nothing: GRPC is this. The classes are swiftgrpc's own
# (GRPC::BadStatus is SwiftGRPC::Error, GRPC::RpcServer a SwiftGRPC::Server...), so the two
# names can be mixed.
#
# To use the real gem and swiftgrpc side by side instead, require "grpc" and then "swiftgrpc":
# swiftgrpc's errors are then the gem's GRPC::BadStatus classes.
if defined?(::GRPC::BadStatus) && !defined?(::GRPC::SWIFTGRPC)
  raise LoadError, "swiftgrpc/grpc defines the GRPC module, but the grpc gem is already loaded: " \
                   "require \"swiftgrpc/grpc\" instead of \"grpc\" (or require \"swiftgrpc\" to use " \
                   "both, with swiftgrpc's classes under SwiftGRPC::)"
end

require_relative "../swiftgrpc"
require "forwardable"

# The gem's files are provided: `require "grpc"` (or one of its parts) finds them loaded.
%w[grpc grpc/errors grpc/structs grpc/grpc grpc/logconfig grpc/notifier grpc/version
   grpc/core/status_codes grpc/core/time_consts grpc/generic/active_call grpc/generic/bidi_call
   grpc/generic/client_stub grpc/generic/service grpc/generic/rpc_desc grpc/generic/rpc_server
   grpc/generic/interceptors grpc/generic/interceptor_registry grpc/google_rpc_status_utils]
  .each { |f| $LOADED_FEATURES << "#{f}.rb" unless $LOADED_FEATURES.include?("#{f}.rb") }

SwiftGRPC::Error.status_struct # Struct::Status, as the gem defines it

# The grpc gem's namespace, served by swiftgrpc.
module GRPC
  # Marks this GRPC module as swiftgrpc's.
  SWIFTGRPC = true
  VERSION = SwiftGRPC::VERSION

  BadStatus = SwiftGRPC::Error
  SwiftGRPC::STATUS_ERRORS.each_value { |klass| const_set(klass.name.split("::").last, klass) }

  GenericService = SwiftGRPC::GenericService
  RpcDesc = SwiftGRPC::RpcDesc
  ClientStub = SwiftGRPC::ClientStub
  Interceptor = SwiftGRPC::Interceptor
  ClientInterceptor = SwiftGRPC::ClientInterceptor
  ServerInterceptor = SwiftGRPC::ServerInterceptor

  # The gem's RpcServer, with its defaults (30 threads; stop gives the calls in flight
  # poll_period = 1 second). See {SwiftGRPC::Server} for what it serves and how.
  class RpcServer < SwiftGRPC::Server
    DEFAULT_POOL_SIZE = 30
    DEFAULT_MAX_WAITING_REQUESTS = 20
    DEFAULT_POLL_PERIOD = 1
    DEFAULT_KEEP_ALIVE = 1 # the gem's Pool::DEFAULT_KEEP_ALIVE

    def initialize(pool_size: DEFAULT_POOL_SIZE, max_waiting_requests: DEFAULT_MAX_WAITING_REQUESTS,
                   poll_period: DEFAULT_POLL_PERIOD, pool_keep_alive: DEFAULT_KEEP_ALIVE, **kw)
      super(pool_size: pool_size, max_waiting_requests: max_waiting_requests, poll_period: poll_period,
            pool_keep_alive: pool_keep_alive, **kw)
    end
  end

  # Reads the rich status (google.rpc.Status) of a status, as the gem's.
  class GoogleRpcStatusUtils
    # @param status [Struct::Status]
    # @return [Google::Rpc::Status, nil]
    def self.extract_google_rpc_status(status)
      raise ArgumentError, "bad type" unless status.is_a?(Struct::Status)

      bin = status.metadata["grpc-status-details-bin"]
      return nil if bin.nil?

      require "google/rpc/status_pb"
      Google::Rpc::Status.decode(bin)
    end
  end

  # GRPC.logger: a no-op logger unless the application defines one (as the gem's).
  module DefaultLogger
    # Logs nothing.
    class NoopLogger
      %i[debug info warn error fatal].each { |m| define_method(m) { |*| nil } }
    end
    LOGGER = NoopLogger.new

    def logger
      LOGGER
    end
  end
  extend DefaultLogger unless methods.include?(:logger)

  # The gem's GRPC::Core.
  module Core
    StatusCodes = SwiftGRPC::StatusCodes
    ChannelCredentials = SwiftGRPC::ChannelCredentials
    ServerCredentials = SwiftGRPC::ServerCredentials
    CallCredentials = SwiftGRPC::CallCredentials
    TimeSpec = SwiftGRPC::TimeSpec

    # Flags of one written message.
    module WriteFlags
      NO_COMPRESS = SwiftGRPC::WriteFlags::NO_COMPRESS
    end

    # Request metadata keys the gem (gRPC C-core) reads.
    module MetadataKeys
      COMPRESSION_REQUEST_ALGORITHM = SwiftGRPC::Compression::REQUEST_KEY
    end

    # The gem's low-level call errors. swiftgrpc reports every call's failure as a status
    # (GRPC::BadStatus and its subclasses) and raises neither; they exist so that code
    # rescuing them loads.
    class CallError < StandardError; end
    class OutOfTime < StandardError; end

    # The gem's propagation masks (for `propagate_mask:`, which swiftgrpc refuses by name).
    module PropagateMasks
      DEADLINE = 1
      CENSUS_STATS_CONTEXT = 2
      CENSUS_TRACING_CONTEXT = 4
      CANCELLATION = 8
      DEFAULTS = 0xffff
    end

    # xDS is not supported by swiftgrpc: making these credentials raises NotImplementedError.
    class XdsChannelCredentials
      def initialize(*)
        raise NotImplementedError, "GRPC::Core::XdsChannelCredentials: xDS is not supported by swiftgrpc"
      end
    end

    # See XdsChannelCredentials.
    class XdsServerCredentials
      def initialize(*)
        raise NotImplementedError, "GRPC::Core::XdsServerCredentials: xDS is not supported by swiftgrpc"
      end
    end

    # The gem's channel states, as numbers.
    module ConnectivityStates
      IDLE = 0
      CONNECTING = 1
      READY = 2
      TRANSIENT_FAILURE = 3
      FATAL_FAILURE = 4
    end

    # Deadlines as the gem builds them.
    module TimeConsts
      ZERO = TimeSpec::ZERO
      INFINITE_FUTURE = TimeSpec::INFINITE_FUTURE
      INFINITE_PAST = TimeSpec::INFINITE_PAST

      # A deadline from seconds from now (a TimeSpec or Time is returned as it is; nil or 0 is
      # ZERO; a negative number is INFINITE_FUTURE), as the gem's.
      def from_relative_time(timeish)
        case timeish
        when TimeSpec, Time then timeish
        when nil then ZERO
        when Numeric
          if timeish.negative? then INFINITE_FUTURE
          elsif timeish.zero? then ZERO
          else Time.now + timeish
          end
        else raise TypeError, "Cannot make an absolute deadline from #{timeish.inspect}"
        end
      end
      module_function :from_relative_time
    end

    # The gem's GRPC::Core::Channel: `Channel.new(target, channel_args, credentials)`, with
    # connectivity states as numbers.
    class Channel < SwiftGRPC::Channel
      SSL_TARGET = "grpc.ssl_target_name_override"

      # @param channel_args [Hash] the gem's channel arguments (see SwiftGRPC::ClientStub)
      # @param creds [ChannelCredentials, Symbol] or :this_channel_is_insecure
      def initialize(target, channel_args = {}, creds = :this_channel_is_insecure)
        unless creds == :this_channel_is_insecure || creds.is_a?(ChannelCredentials)
          raise TypeError, "credentials must be GRPC::Core::ChannelCredentials or :this_channel_is_insecure"
        end

        super(target, credentials: creds == :this_channel_is_insecure ? nil : creds,
                      **SwiftGRPC::ClientStub.gem_channel_args(channel_args))
      end

      # @return [Integer] a ConnectivityStates value
      def connectivity_state(try_to_connect = false)
        Channel.state_number(super)
      end

      # Waits until the state is not `last_state` or `deadline` passes.
      # @return [Boolean] whether the state changed
      def watch_connectivity_state(last_state, deadline)
        secs = deadline.nil? ? nil : [deadline.to_f - Time.now.to_f, 0].max
        secs = nil if secs&.infinite?
        state = SwiftGRPC::Channel::STATES.fetch(last_state) do
          raise ArgumentError, "unknown connectivity state #{last_state.inspect}"
        end
        !wait_for_state_change(state, secs).nil?
      end

      alias destroy close

      # @api private
      def self.state_number(sym)
        { idle: 0, connecting: 1, ready: 2, transient_failure: 3, shutdown: 4 }.fetch(sym)
      end
    end

    # The gem's compression settings of a channel, as channel arguments.
    class CompressionOptions
      attr_reader :default_algorithm, :disabled_algorithms

      # @param default_algorithm [Symbol, nil] :identity, :deflate or :gzip
      # @param default_level [nil] compression levels are not supported (refused)
      # @param disabled_algorithms [Array<Symbol>] swiftgrpc accepts every algorithm: refused
      #   unless empty
      def initialize(default_algorithm: nil, default_level: nil, disabled_algorithms: [])
        raise ArgumentError, "default_level: compression levels are not supported by swiftgrpc" unless default_level.nil?
        unless disabled_algorithms.empty?
          raise ArgumentError, "disabled_algorithms: swiftgrpc always accepts identity, deflate and gzip"
        end

        SwiftGRPC::Compression.algorithm(default_algorithm, "default_algorithm") if default_algorithm
        @default_algorithm = default_algorithm
        @disabled_algorithms = []
      end

      # @return [Hash] channel arguments ("grpc.default_compression_algorithm", ...)
      def to_channel_arg_hash
        h = { "grpc.compression_enabled_algorithms_bitset" => 7 }
        h["grpc.default_compression_algorithm"] = SwiftGRPC::Compression.algorithm(@default_algorithm, "default_algorithm") if @default_algorithm
        h
      end
      alias to_hash to_channel_arg_hash
    end
  end
end
