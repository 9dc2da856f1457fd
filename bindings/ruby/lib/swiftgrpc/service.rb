# frozen_string_literal: true

module SwiftGRPC
  # A method of a service: the grpc gem's RpcDesc, field for field, so that descriptions from
  # either gem are read the same way.
  class RpcDesc < Struct.new(:name, :input, :output, :marshal_method, :unmarshal_method)
    # Marks a streamed message type in `rpc` declarations: `rpc :Chat, stream(Note), stream(Note)`.
    class Stream
      attr_accessor :type

      def initialize(type)
        @type = type
      end
    end

    # @return [Proc] message -> bytes
    def marshal_proc
      meth = marshal_method
      proc { |o| o.class.public_send(meth, o).to_s }
    end

    # @param target [:input, :output]
    # @return [Proc] bytes -> message
    def unmarshal_proc(target)
      raise ArgumentError, "target must be :input or :output" unless %i[input output].include?(target)

      klass = public_send(target)
      klass = klass.type if klass.respond_to?(:type) && !klass.is_a?(Class)
      meth = unmarshal_method
      proc { |b| klass.public_send(meth, b) }
    end

    def request_response?
      !streamed?(input) && !streamed?(output)
    end

    def client_streamer?
      streamed?(input) && !streamed?(output)
    end

    def server_streamer?
      !streamed?(input) && streamed?(output)
    end

    def bidi_streamer?
      streamed?(input) && streamed?(output)
    end

    private

    def streamed?(x)
      !x.is_a?(Class) && x.respond_to?(:type)
    end
  end

  # Describes one method for the server and the client: its path, RPC kind and how its
  # messages are (un)marshalled. Built from an rpc description of either this gem or the grpc
  # gem (`GRPC::GenericService`), or for raw bytes.
  class MethodSpec
    KINDS = { unary: Native::KIND_UNARY, server_streaming: Native::KIND_SERVER_STREAMING,
              client_streaming: Native::KIND_CLIENT_STREAMING,
              bidi_streaming: Native::KIND_BIDI_STREAMING }.freeze

    # @return [String] "/package.Service/Method"
    attr_reader :path
    # @return [Integer] Native::KIND_*
    attr_reader :kind
    # @return [Proc, nil] request bytes -> request (nil: bytes as they are)
    attr_reader :decode_request
    # @return [Proc, nil] response -> bytes
    attr_reader :encode_response
    # @return [Proc, nil] request -> bytes (client side)
    attr_reader :encode_request
    # @return [Proc, nil] bytes -> response (client side)
    attr_reader :decode_response
    # @return [Symbol, nil] the handler method of a service object (snake_case of the rpc name)
    attr_reader :handler_name

    def initialize(path, kind, decode_request: nil, encode_response: nil, encode_request: nil,
                   decode_response: nil, handler_name: nil)
      @path = path
      @kind = kind
      @decode_request = decode_request
      @encode_response = encode_response
      @encode_request = encode_request
      @decode_response = decode_response
      @handler_name = handler_name
    end

    # @param kind [Symbol, Integer] :unary, :server_streaming, :client_streaming,
    #   :bidi_streaming, or a Native::KIND_* value
    # @return [Integer] Native::KIND_*
    def self.kind_value(kind)
      return kind if kind.is_a?(Integer) && KINDS.value?(kind)

      KINDS.fetch(kind) do
        raise ArgumentError, "unknown RPC kind #{kind.inspect}: use one of #{KINDS.keys.join(', ')}"
      end
    end

    # The methods of a service class (or instance) declared with {SwiftGRPC::GenericService}
    # or the grpc gem's GRPC::GenericService (what grpc_tools_ruby_protoc generates).
    # @return [Array<MethodSpec>]
    def self.from_service(service)
      klass = service.is_a?(Class) ? service : service.class
      unless klass.respond_to?(:rpc_descs) && klass.respond_to?(:service_name)
        raise TypeError, "#{klass} is not a service: include SwiftGRPC::GenericService " \
                         "(or GRPC::GenericService) and declare its methods with `rpc`"
      end
      if klass.service_name.nil? || klass.service_name.empty?
        raise ArgumentError, "#{klass} has no service_name"
      end

      klass.rpc_descs.map do |name, desc|
        kind = if desc.request_response? then Native::KIND_UNARY
               elsif desc.server_streamer? then Native::KIND_SERVER_STREAMING
               elsif desc.client_streamer? then Native::KIND_CLIENT_STREAMING
               else Native::KIND_BIDI_STREAMING
               end
        new("/#{klass.service_name}/#{name}", kind,
            decode_request: desc.unmarshal_proc(:input), encode_response: desc.marshal_proc,
            encode_request: desc.marshal_proc, decode_response: desc.unmarshal_proc(:output),
            handler_name: GenericService.underscore(name.to_s).to_sym)
      end
    end
  end

  # The service DSL, the same as the grpc gem's GRPC::GenericService, so that a service
  # written for either reads the same:
  #
  #   class Greeter
  #     include SwiftGRPC::GenericService
  #     self.marshal_class_method = :encode
  #     self.unmarshal_class_method = :decode
  #     self.service_name = "helloworld.Greeter"
  #     rpc :SayHello, HelloRequest, HelloReply
  #     rpc :LotsOfReplies, HelloRequest, stream(HelloReply)
  #   end
  #
  # Subclass it and define `say_hello(request, call)` to serve; `Greeter.rpc_stub_class`
  # gives a client stub whose `say_hello(request, metadata:, timeout:)` calls it.
  module GenericService
    # "SayHello" -> "say_hello", as the grpc gem does.
    def self.underscore(word)
      word.gsub(/([A-Z]+)([A-Z][a-z])/, '\1_\2').gsub(/([a-z\d])([A-Z])/, '\1_\2')
          .tr("-", "_").downcase
    end

    # The grpc gem's error for an rpc declared twice.
    class DuplicateRpcName < ArgumentError
      def initialize(name)
        super("rpc (#{name}) is already defined")
      end
    end

    # The class-level DSL.
    module Dsl
      attr_writer :service_name, :marshal_class_method, :unmarshal_class_method

      # @return [String] "package.Service"
      def service_name
        @service_name || (superclass.respond_to?(:service_name) ? superclass.service_name : nil)
      end

      def marshal_class_method
        @marshal_class_method ||
          (superclass.respond_to?(:marshal_class_method) ? superclass.marshal_class_method : :encode)
      end

      def unmarshal_class_method
        @unmarshal_class_method ||
          (superclass.respond_to?(:unmarshal_class_method) ? superclass.unmarshal_class_method : :decode)
      end

      # Wraps a message class to mark it streamed.
      def stream(type)
        RpcDesc::Stream.new(type)
      end

      # Declares a method. Defines a default implementation answering UNIMPLEMENTED.
      def rpc(name, input, output)
        raise DuplicateRpcName, name if own_rpc_descs.key?(name.to_sym)

        own_rpc_descs[name.to_sym] = RpcDesc.new(name.to_sym, input, output,
                                                 marshal_class_method, unmarshal_class_method)
        define_method(GenericService.underscore(name.to_s)) do |*|
          raise SwiftGRPC::Unimplemented, "Method not implemented!"
        end
      end

      # @return [Hash{Symbol=>RpcDesc}] this class's methods and its ancestors'
      def rpc_descs
        inherited = superclass.respond_to?(:rpc_descs) ? superclass.rpc_descs : {}
        inherited.merge(own_rpc_descs)
      end

      # A client stub class for this service: see {SwiftGRPC::ClientStub.for}.
      def rpc_stub_class
        ClientStub.for(self)
      end

      private

      def own_rpc_descs
        @own_rpc_descs ||= {}
      end
    end

    def self.included(base)
      base.extend(Dsl)
    end
  end
end
