# frozen_string_literal: true

# Runs one of the grpc gem's own Ruby programs, from the installed gem's files, on swiftgrpc:
# the program's `require "grpc"` (or `require_relative "../../lib/grpc"`) line is swapped for
# `require "swiftgrpc/grpc"` and nothing else changes (its __FILE__ and require_relative
# paths stay the gem's).
#
#   ruby run_gem_file.rb /path/to/gem/src/ruby/pb/test/server.rb --port 50051
$LOAD_PATH.unshift File.expand_path("../../../bindings/ruby/lib", __dir__)
path = ARGV.shift or abort "usage: run_gem_file.rb PROGRAM [ARGS...]"
path = File.expand_path(path)
source = File.read(path)
line = /^require(?:_relative)? ['"](?:\.\.\/\.\.\/lib\/)?grpc['"]$/
swaps = source.scan(line).size
abort "#{path}: expected one `require 'grpc'` line, found #{swaps}" unless swaps == 1

source = source.sub(line, 'require "swiftgrpc/grpc"')
$0 = path
eval(source, TOPLEVEL_BINDING, path, 1) # rubocop:disable Security/Eval
