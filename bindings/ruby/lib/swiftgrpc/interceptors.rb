# frozen_string_literal: true

module SwiftGRPC
  # Interceptors with the grpc gem's classes and semantics (GRPC::Interceptor,
  # GRPC::ClientInterceptor, GRPC::ServerInterceptor): subclass one, override the methods of the
  # RPC kinds to intercept, and `yield` to go on with the call (the default does only that).
  # Given as `interceptors: [...]` to {Server.new} and to {ClientStub.new}. As in the gem, the
  # last interceptor of the list runs first (outermost). When the grpc gem is loaded, its
  # interceptor classes are accepted too.
  #
  # Client methods get `method:` (the path), `metadata:` (the request metadata Hash: what an
  # interceptor puts in it before `yield` is sent), `call:` (a view with #deadline), and
  # `request:` or `requests:`; what `yield` returns (the response, or the responses) is theirs
  # to return. Server methods get `method:` (the handler Method), `call:` (the handler's call)
  # and `request:` or `requests:`; a status error raised ends the call with its status.
  class Interceptor
    # @return [Hash] the options given to #initialize
    attr_reader :options

    def initialize(options = {})
      @options = options || {}
    end
  end

  # Intercepts calls of a {ClientStub}.
  class ClientInterceptor < Interceptor
    def request_response(request: nil, call: nil, method: nil, metadata: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end

    def client_streamer(requests: nil, call: nil, method: nil, metadata: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end

    def server_streamer(request: nil, call: nil, method: nil, metadata: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end

    def bidi_streamer(requests: nil, call: nil, method: nil, metadata: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end
  end

  # Intercepts calls a {Server} serves.
  class ServerInterceptor < Interceptor
    def request_response(request: nil, call: nil, method: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end

    def client_streamer(call: nil, method: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end

    def server_streamer(request: nil, call: nil, method: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end

    def bidi_streamer(requests: nil, call: nil, method: nil) # rubocop:disable Lint/UnusedMethodArgument
      yield
    end
  end

  # The interceptors of one server or stub.
  # @api private
  class Interceptors
    # @param list [Array<Interceptor>] swiftgrpc's or the grpc gem's interceptors
    # @raise [TypeError] for anything else (the gem raises its DescendantError)
    def initialize(list)
      raise TypeError, "interceptors must be an Array, not #{list.class}" unless list.is_a?(Array)

      list.each do |i|
        next if i.is_a?(Interceptor)
        next if defined?(::GRPC::Interceptor) && i.is_a?(::GRPC::Interceptor)

        raise TypeError, "interceptors must descend from SwiftGRPC::Interceptor (GRPC::Interceptor), " \
                         "not #{i.class}"
      end
      @list = list.dup.freeze
    end

    def none?
      @list.empty?
    end

    # Runs the block inside every interceptor's `type` method, the last interceptor outermost.
    def intercept(type, args, index = @list.size - 1, &blk)
      return blk.call if index.negative?

      @list[index].public_send(type, **args) { intercept(type, args, index - 1, &blk) }
    end
  end

  # What a client interceptor's `call:` shows of the call: its deadline (the gem's
  # InterceptableView).
  InterceptableView = Struct.new(:deadline)
end
