# frozen_string_literal: true

# grpc.testing.TestService as gRPC's interop spec (doc/interop-test-descriptions.md) describes
# it, including what the gem's server.rb leaves out: `expect_compressed` (a request that says it
# was sent compressed and was not, or the reverse, is INVALID_ARGUMENT), `response_compressed`
# and per-message `compressed` response parameters. Written for the gem's API on swiftgrpc
# (`require "swiftgrpc/grpc"`), with the gem's generated messages from its installed files, so
# that the gem's client.rb can run its compression cases too.
#
#   ruby full_interop_server.rb PORT      (prints "listening on PORT")
$LOAD_PATH.unshift File.expand_path("../../../bindings/ruby/lib", __dir__)
require "swiftgrpc/grpc"
pb = File.join(Gem::Specification.find_by_name("grpc").full_gem_path, "src/ruby/pb")
$LOAD_PATH.unshift(pb)
require "src/proto/grpc/testing/test_services_pb"

# The interop TestService.
class FullTestService < Grpc::Testing::TestService::Service
  include Grpc::Testing

  ECHO_INITIAL = "x-grpc-test-echo-initial"
  ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"

  def empty_call(_req, _call)
    Empty.new
  end

  def unary_call(req, call)
    echo_metadata(call)
    check_compression(req.expect_compressed, call)
    echo_status(req.response_status)
    call.set_compression(:gzip) if req.response_compressed&.value
    SimpleResponse.new(payload: payload(req.response_type, req.response_size))
  end

  def streaming_input_call(call)
    size = 0
    call.each_remote_read do |req|
      check_compression(req.expect_compressed, call)
      size += req.payload.body.bytesize
    end
    StreamingInputCallResponse.new(aggregated_payload_size: size)
  end

  def streaming_output_call(req, call)
    echo_status(req.response_status)
    respond(req, call) { |m| yield m }
  end

  def full_duplex_call(reqs, call, &out)
    echo_metadata(call)
    reqs.each do |req|
      echo_status(req.response_status)
      respond(req, call, &out)
    end
  end

  def half_duplex_call(reqs, call, &out)
    reqs.to_a.each { |req| respond(req, call, &out) }
  end

  private

  def payload(type, size)
    Payload.new(type: type, body: "\0".b * size)
  end

  def respond(req, call)
    req.response_parameters.each do |p|
      sleep(p.interval_us / 1e6) if p.interval_us.positive?
      call.write_flag = p.compressed&.value ? nil : GRPC::Core::WriteFlags::NO_COMPRESS
      yield StreamingOutputCallResponse.new(payload: payload(req.response_type, p.size))
    end
  end

  # The request says whether it was compressed: a mismatch is INVALID_ARGUMENT (the spec).
  def check_compression(expect, call)
    return if expect.nil? || expect.value == call.message_compressed?

    raise GRPC::InvalidArgument, "expected a #{expect.value ? 'compressed' : 'uncompressed'} request"
  end

  def echo_metadata(call)
    call.metadata_to_send[ECHO_INITIAL] = call.metadata[ECHO_INITIAL] if call.metadata.key?(ECHO_INITIAL)
    call.output_metadata[ECHO_TRAILING] = call.metadata[ECHO_TRAILING] if call.metadata.key?(ECHO_TRAILING)
  end

  def echo_status(status)
    raise GRPC::BadStatus.new_status_exception(status.code, status.message) if status && status.code != 0
  end
end

server = GRPC::RpcServer.new(pool_size: 8)
port = server.add_http2_port("127.0.0.1:#{ARGV.fetch(0, 0)}", :this_port_is_insecure)
server.handle(FullTestService)
puts "listening on #{port}"
$stdout.flush
server.run_till_terminated_or_interrupted(%w[INT TERM])
