# frozen_string_literal: true

module SwiftGRPC
  # The 17 gRPC status codes, with the values and names of the grpc gem's
  # GRPC::Core::StatusCodes.
  module StatusCodes
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    # @return [String, nil] the name of a code ("NOT_FOUND"), nil outside 0-16
    def self.name_of(code)
      constants.find { |c| const_get(c) == code }&.to_s
    end
  end

  # A call ended with a status other than OK. Raised by client calls; raised by a handler, it
  # is the status its call ends with. One subclass per code, named like the grpc gem's
  # (SwiftGRPC::NotFound, SwiftGRPC::DeadlineExceeded, ...), with the gem's constructors:
  # `NotFound.new(details = "unknown cause", metadata = {}, debug_error_string = nil)` and
  # `Error.new(code, details, metadata, debug_error_string)`.
  #
  # When the grpc gem is loaded before swiftgrpc, these are the gem's own classes
  # (SwiftGRPC::Error is GRPC::BadStatus, SwiftGRPC::NotFound is GRPC::NotFound, ...), so a
  # `rescue` of either catches the errors of both. `require "swiftgrpc/grpc"` makes them the
  # GRPC:: classes when the gem is not loaded.
  module ErrorFactory
    # The exception class of a status code.
    # @return [Class] the subclass for `code` (the base class for a code outside 0-16)
    def class_for(code)
      STATUS_ERRORS.fetch(code, Error)
    end

    # @return [Error] an instance of the subclass for `code`
    def for(code, details = "", metadata = {}, debug_error_string = nil)
      klass = class_for(code)
      if klass == Error
        Error.new(code, details, metadata, debug_error_string)
      else
        klass.new(details, metadata, debug_error_string)
      end
    end
    alias new_status_exception for
  end

  if defined?(::GRPC::BadStatus) && !defined?(::GRPC::SWIFTGRPC) # the grpc gem is loaded
    Error = ::GRPC::BadStatus
    Error.extend(ErrorFactory)
    STATUS_ERRORS = StatusCodes.constants.to_h do |name|
      camel = name.to_s.split("_").map(&:capitalize).join
      SwiftGRPC.const_set(camel, ::GRPC.const_get(camel))
      [StatusCodes.const_get(name), ::GRPC.const_get(camel)]
    end.freeze
  else
    class Error < StandardError
      extend ErrorFactory

      # @return [Integer] the status code (SwiftGRPC::StatusCodes)
      attr_reader :code
      # @return [String] the status message
      attr_reader :details
      # @return [Hash{String=>String,Array<String>}] the trailing metadata
      attr_reader :metadata
      # @return [String, nil] the grpc gem's debug text (nil from swiftgrpc)
      attr_reader :debug_error_string

      # @param code [Integer] the status code (only on Error itself: each subclass knows its own)
      # @param details [String] the status message
      # @param metadata [Hash] trailing metadata to send (server) or received (client)
      def initialize(code, details = "unknown cause", metadata = {}, debug_error_string = nil)
        @code = code
        @details = details.to_s
        @metadata = metadata || {}
        @debug_error_string = debug_error_string
        text = "#{@code}:#{StatusCodes.name_of(@code) || 'UNKNOWN_CODE'}: #{@details}"
        text += ". debug_error_string:{#{debug_error_string}}" if debug_error_string
        super(text)
      end

      # @return [Struct::Status] code, details, metadata, debug_error_string (the gem's)
      def to_status
        Error.status_struct.new(code, details, metadata, debug_error_string)
      end

      # @return [Google::Rpc::Status, nil] the rich status in "grpc-status-details-bin", if any
      def to_rpc_status
        bin = metadata["grpc-status-details-bin"]
        return nil if bin.nil?

        require "google/rpc/status_pb"
        Google::Rpc::Status.decode(bin)
      rescue Google::Protobuf::ParseError
        nil
      end

      # @api private — the gem's Struct::Status (defined here if the gem is not loaded)
      def self.status_struct
        return Struct::Status if defined?(Struct::Status)

        Struct.new("Status", :code, :details, :metadata, :debug_error_string)
      end
    end

    # The subclass of every code (OK included, like the grpc gem's GRPC::Ok).
    STATUS_ERRORS = StatusCodes.constants.to_h do |name|
      code = StatusCodes.const_get(name)
      klass = Class.new(Error) do
        const_set(:CODE, code)
        define_method(:initialize) do |details = "unknown cause", metadata = {}, debug_error_string = nil|
          super(code, details, metadata, debug_error_string)
        end
      end
      SwiftGRPC.const_set(name.to_s.split("_").map(&:capitalize).join, klass)
      [code, klass]
    end.freeze
  end

  # An operation on a closed channel or a stopped server.
  class ClosedError < StandardError; end

  # An operation out of order (a second initial metadata, a read on a unary call...).
  class WrongState < StandardError; end

  class NativeError
    # Raises the Ruby exception for a library refusal `rc` of `function`: bad arguments
    # (invalid metadata, UTF-8 or value) → ArgumentError, a message above the size limit →
    # SwiftGRPC::ResourceExhausted, an operation out of order → WrongState, else NativeError.
    def self.raise_for(rc, function)
      why = Native.last_error.to_s
      case rc
      when Native::E_INVALID_METADATA, Native::E_INVALID_UTF8, Native::E_INVALID_ARGUMENT
        raise ArgumentError, "#{function}: #{why}"
      when Native::E_TOO_LARGE then raise ResourceExhausted, why
      when Native::E_WRONG_STATE then raise WrongState, "#{function}: #{why}"
      else raise new(function, rc, why)
      end
    end
  end
end
