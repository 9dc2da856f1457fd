#!/usr/bin/env bash
# Builds the gem (with the library inside), installs it into an empty GEM_HOME, and serves and
# calls from outside the checkout: the gem must find its own copy of the library.
# Usage: check_gem_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1"; build="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" "$src/bindings/ruby/build_gem.sh" "$work" >/dev/null
export GEM_HOME="$work/gems"
export GEM_PATH="$GEM_HOME:$(ruby -e 'print Gem.path.join(":")')"
gem install -q --local --no-document "$work/swiftgrpc.gem" >/dev/null
cd "$work"
unset SWIFTGRPC_LIBRARY RUBYLIB
SWIFT_BACKTRACE=enable=no ruby -e '
  require "swiftgrpc"
  path = SwiftGRPC.library_path
  abort "loaded #{path}, not the gem copy" unless path.start_with?(ENV["GEM_HOME"])
  s = SwiftGRPC::Server.new
  s.handle("/e.E/U", :unary) { |req, _| "gem:" + req }
  port = s.add_http2_port("127.0.0.1:0")
  s.start
  got = SwiftGRPC::Channel.new("127.0.0.1:#{port}").request_response("/e.E/U", "ok")
  abort "got #{got.inspect}" unless got == "gem:ok"
  s.stop
  puts "gem install: ok (#{path})"
'
