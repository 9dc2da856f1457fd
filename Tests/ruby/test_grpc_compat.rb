# frozen_string_literal: true

# `require "swiftgrpc/grpc"` without the grpc gem: compat/grpc_compat_checks.rb runs in a
# process of its own (this process has the gem loaded). And here, with the gem loaded first,
# swiftgrpc's errors are the gem's classes, and swiftgrpc/grpc refuses to shadow the gem.
require_relative "test_helper"
require "open3"

class TestGrpcCompat < Minitest::Test
  include ClientHelpers

  def test_code_written_for_the_gem_runs_on_swiftgrpc_alone
    out, status = Open3.capture2e(RbConfig.ruby, File.join(__dir__, "compat/grpc_compat_checks.rb"))
    assert status.success?, out
    assert_match(/\d+ runs, \d+ assertions, 0 failures, 0 errors, 0 skips/, out)
  end

  def test_with_the_gem_loaded_swiftgrpc_errors_are_the_gems_classes
    assert_same GRPC::BadStatus, SwiftGRPC::Error
    assert_same GRPC::NotFound, SwiftGRPC::NotFound
    e = assert_raises(GRPC::InvalidArgument) do # a swiftgrpc client, the gem's server
      stub_for(:grpc, :swift).unary(Msg.new(text: "status:3:bad"))
    end
    assert_equal [3, "bad"], [e.code, e.details]
    e = assert_raises(GRPC::Unknown) { stub_for(:swift, :swift).unary(Msg.new(text: "raise:RuntimeError")) }
    assert_equal "RuntimeError: raised on purpose", e.details
    assert_instance_of GRPC::Cancelled, SwiftGRPC::Error.for(1, "c")
  end

  def test_swiftgrpc_grpc_refuses_to_shadow_a_loaded_gem
    e = assert_raises(LoadError) { load File.join(ROOT, "bindings/ruby/lib/swiftgrpc/grpc.rb") }
    assert_match(/grpc gem is already loaded/, e.message)
  end
end
