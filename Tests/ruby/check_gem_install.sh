#!/usr/bin/env bash
# Installs swiftgrpc as a gem user does: builds our gem (with the library inside) and installs
# it with `gem install` into an empty GEM_HOME that is the only gem path (Debian's ruby-ffi is
# not seen), its ffi dependency coming as a source gem (Tests/ruby/ffi_gem.sh: what
# rubygems.org serves) that `gem install` compiles against the system's libffi (libffi-dev).
# Then serves and calls from outside the checkout, and checks that the gem's own library and
# the freshly built ffi extension are what was loaded.
# Usage: check_gem_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$(cd "$1" && pwd)"; build="$(cd "$2" && pwd)"
work="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" "$src/bindings/ruby/build_gem.sh" "$work" >/dev/null
cp "$("$src/Tests/ruby/ffi_gem.sh")" "$work/"
export GEM_HOME="$work/gems" GEM_PATH="$work/gems"
(cd "$work" && gem install -q --local --no-document swiftgrpc.gem >/dev/null)
cd "$work"
unset SWIFTGRPC_LIBRARY RUBYLIB
SWIFT_BACKTRACE=enable=no ruby -e '
  gem "swiftgrpc" # activates its ffi: the one just built, not /usr/lib/ruby/vendor_ruby
  require "swiftgrpc"
  home = ENV["GEM_HOME"]
  path = SwiftGRPC.library_path
  abort "loaded #{path}, not the gem copy" unless path.start_with?(home)
  ffi = $LOADED_FEATURES.grep(/ffi_c\.so\z/)
  abort "ffi extension loaded from #{ffi.inspect}, not from #{home}" unless ffi.size == 1 && ffi[0].start_with?(home)
  linked = `ldd #{ffi[0]}`[/libffi\.so\S*/]
  abort "the ffi extension is not linked to the system libffi: #{`ldd #{ffi[0]}`}" unless linked
  s = SwiftGRPC::Server.new
  s.handle("/e.E/U", :unary) { |req, _| "gem:" + req }
  port = s.add_http2_port("127.0.0.1:0")
  s.start
  got = SwiftGRPC::Channel.new("127.0.0.1:#{port}").request_response("/e.E/U", "ok")
  abort "got #{got.inspect}" unless got == "gem:ok"
  s.stop
  puts "gem install: ok (#{path}; ffi #{Gem.loaded_specs["ffi"].version} built here against #{linked})"
'
