# frozen_string_literal: true

# The Greeter service for swiftgrpc: the text grpc_tools_ruby_protoc generates
# (helloworld_services_pb.rb), with SwiftGRPC::GenericService in place of GRPC::GenericService,
# so it needs neither the grpc gem nor its generator. With the grpc gem installed, its generated
# file works unchanged as well: swiftgrpc serves and calls GRPC::GenericService classes.
require "swiftgrpc"
require "helloworld_pb"

module Helloworld
  module Greeter
    class Service
      include ::SwiftGRPC::GenericService

      self.marshal_class_method = :encode
      self.unmarshal_class_method = :decode
      self.service_name = "helloworld.Greeter"

      rpc :SayHello, ::Helloworld::HelloRequest, ::Helloworld::HelloReply
    end

    Stub = Service.rpc_stub_class
  end
end
