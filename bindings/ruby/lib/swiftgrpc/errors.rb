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
  # (SwiftGRPC::NotFound, SwiftGRPC::DeadlineExceeded, ...).
  class Error < StandardError
    # @return [Integer] the status code (SwiftGRPC::StatusCodes)
    attr_reader :code
    # @return [String] the status message
    attr_reader :details
    # @return [Hash{String=>String,Array<String>}] the trailing metadata
    attr_reader :metadata

    # @param details [String] the status message
    # @param metadata [Hash] trailing metadata to send (server) or received (client)
    # @param code [Integer] only for SwiftGRPC::Error itself; subclasses know their code
    def initialize(details = "", metadata = {}, code: nil)
      @code = code || self.class::CODE
      @details = details.to_s
      @metadata = metadata || {}
      super("#{@code}:#{StatusCodes.name_of(@code) || 'UNKNOWN_CODE'}: #{@details}")
    end

    # The exception class of a status code.
    # @return [Class] the subclass for `code` (SwiftGRPC::Error for a code outside 0-16)
    def self.class_for(code)
      CLASSES.fetch(code, Error)
    end

    # @return [Error] an instance of the subclass for `code`
    def self.for(code, details = "", metadata = {})
      klass = class_for(code)
      klass == Error ? Error.new(details, metadata, code: code) : klass.new(details, metadata)
    end

    CODE = StatusCodes::UNKNOWN
  end

  # The subclass of every code (OK included, like the grpc gem's GRPC::Ok).
  Error::CLASSES = StatusCodes.constants.to_h do |name|
    code = StatusCodes.const_get(name)
    klass = Class.new(Error) { const_set(:CODE, code) }
    SwiftGRPC.const_set(name.to_s.split("_").map(&:capitalize).join, klass)
    [code, klass]
  end.freeze

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
