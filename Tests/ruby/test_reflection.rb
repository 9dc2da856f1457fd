# frozen_string_literal: true

# Server reflection (grpc.reflection.v1 and v1alpha) on a swiftgrpc Ruby server, read by
# grpcio-reflection's client (reflection_client.py: the descriptor database tools use, then a
# real call made with message classes built from nothing but the reflected descriptors). The
# schema (protos/catalog.proto, shapes.proto: nesting, a map, oneofs, a proto3 optional field,
# enums, an import, a well-known type) is served both by swiftgrpc and by grpcio with
# grpcio-reflection (reflection_grpcio_server.py, the reference): the answers must describe the
# same schema. google-protobuf 3.x keeps no file descriptors, so swiftgrpc rebuilds them: this
# is what proves the rebuild exact.
require_relative "test_helper"
require "open3"

class TestReflection < Minitest::Test
  PROTOS = File.join(__dir__, "protos")
  CLIENT = File.join(__dir__, "reflection_client.py")

  def self.generated
    @generated ||= begin
      system("grpc_tools_ruby_protoc", "-I", PROTOS, "--ruby_out=#{GEN_DIR}", "--grpc_out=#{GEN_DIR}",
             "catalog.proto", "shapes.proto") or raise "protoc failed"
      require "catalog_services_pb"
      Class.new(Swiftgrpc::Catalog::Catalog::Service) do
        def get(query, _call)
          Swiftgrpc::Catalog::Item.new(name: query.name, counts: { "a" => 2 }, place: "shelf")
        end
      end
    end
  end

  def reflect(port)
    out, err, status = Open3.capture3("python3", CLIENT, port.to_s)
    assert status.success?, err
    JSON.parse(out)
  end

  def with_swift_server
    s = SwiftGRPC::Server.new
    s.handle(TestReflection.generated)
    s.enable_reflection
    port = s.add_http2_port("127.0.0.1:0")
    s.start
    yield port
  ensure
    s&.stop
  end

  def grpcio_reference
    @@grpcio_reference ||= begin # rubocop:disable Style/ClassVars
      io = IO.popen(["python3", File.join(__dir__, "reflection_grpcio_server.py"), PROTOS], "r+")
      port = Integer(io.gets)
      reflect(port)
    ensure
      io&.close_write
      io&.close
    end
  end

  def test_the_schema_reflected_is_the_one_grpcio_reflects
    TestReflection.generated
    ours = with_swift_server { |port| reflect(port) }
    theirs = grpcio_reference
    # grpcio's reflection does not resolve method names (gRPC C++'s does, and swiftgrpc's)
    assert_equal ["error", 5], theirs["symbol_files"].delete("swiftgrpc.catalog.Catalog.Get")
    assert_equal "catalog.proto", ours["symbol_files"].delete("swiftgrpc.catalog.Catalog.Get")
    assert_equal theirs.keys.sort, ours.keys.sort
    theirs.each_key { |k| assert_equal theirs[k], ours[k], "#{k} differs from grpcio's reflection" }
    # and what that means for a tool
    assert_equal %w[grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection
                    swiftgrpc.catalog.Catalog], ours["services"]
    assert_equal({ "name" => "lamp", "counts" => { "a" => "2" }, "place" => "shelf" }, ours["call"])
    assert ours["counts_is_map"]
    assert ours["imports_well_known"]
    assert_equal %w[catalog.proto shapes.proto], ours["files"].keys
  end

  def test_one_stream_answers_each_request_in_order_and_lists_every_service
    s = SwiftGRPC::Server.new
    s.handle(TestReflection.generated)
    s.handle(TestServicer)
    s.handle("/raw.Bytes/Echo", :unary) { |req, _| req }
    s.enable_health
    s.enable_reflection
    port = s.add_http2_port("127.0.0.1:0")
    s.start
    m = SwiftGRPC::Reflection::Messages.classes("grpc.reflection.v1")
    req = m["ServerReflectionRequest"]
    asks = [req.new(host: "h", list_services: ""), req.new(file_containing_symbol: "swiftgrpc.pytest.Msg"),
            req.new(file_containing_symbol: "raw.Bytes"), req.new(file_by_filename: "svc.proto")]
    ch = SwiftGRPC::Channel.new("127.0.0.1:#{port}")
    got = ch.bidi_streamer("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", asks,
                           ->(r) { req.encode(r) }, ->(b) { m["ServerReflectionResponse"].decode(b) }, timeout: 10).to_a
    assert_equal asks, got.map(&:original_request)
    assert_equal "h", got[0].valid_host
    assert_equal %w[grpc.health.v1.Health grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection
                    raw.Bytes swiftgrpc.catalog.Catalog swiftgrpc.pytest.Svc],
                 got[0].list_services_response.service.map(&:name)
    svc = Google::Protobuf::FileDescriptorProto.decode(got[1].file_descriptor_response.file_descriptor_proto[0])
    assert_equal ["svc.proto", "swiftgrpc.pytest", %w[Msg], %w[Unary ServerStream ClientStream Bidi]],
                 [svc.name, svc.package, svc.message_type.map(&:name), svc.service[0]["method"].map(&:name)]
    # a raw-bytes method has no descriptors: listed, but not described
    assert_equal [:error_response, SwiftGRPC::StatusCodes::NOT_FOUND], [got[2].message_response, got[2].error_response.error_code]
    assert_equal got[1].file_descriptor_response, got[3].file_descriptor_response
  ensure
    ch&.close
    s&.stop
  end

  def test_reflection_is_enabled_before_start_only
    s = SwiftGRPC::Server.new
    s.add_http2_port("127.0.0.1:0")
    s.start
    assert_raises(SwiftGRPC::ClosedError) { s.enable_reflection }
  ensure
    s&.stop
  end
end
