# frozen_string_literal: true

# Shared by the Ruby test processes: minitest, the checkout's bindings on the load path, and
# the test service generated from Tests/python/protos/svc.proto by grpc_tools_ruby_protoc (the
# grpc gem's generator) into GEN_DIR, which is on the load path too. Loads no gRPC library.
ENV["SWIFT_BACKTRACE"] ||= "enable=no"
ROOT = File.expand_path("../..", __dir__)
$LOAD_PATH.unshift File.join(ROOT, "bindings/ruby/lib")

require "minitest/autorun"
require "tmpdir"

GEN_DIR = Dir.mktmpdir("swiftgrpc-ruby-test")
Minitest.after_run { FileUtils.remove_entry(GEN_DIR) }
system("grpc_tools_ruby_protoc", "-I", File.join(ROOT, "Tests/python/protos"),
       "--ruby_out=#{GEN_DIR}", "--grpc_out=#{GEN_DIR}", "svc.proto") or abort "protoc failed"
$LOAD_PATH.unshift GEN_DIR
