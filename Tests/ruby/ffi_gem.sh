#!/usr/bin/env bash
# Prints the path of an ffi gem (a source gem, compiled by `gem install` against the system's
# libffi, from libffi-dev) built from the upstream release Debian ships: what rubygems.org would
# give a gem user, made from Debian's pool because this machine reaches Debian and PyPI only.
# Cached under CACHE_DIR (default /var/cache/swiftgrpc/ffi-gem). Usage: ffi_gem.sh [CACHE_DIR]
set -euo pipefail
cache="${1:-/var/cache/swiftgrpc/ffi-gem}"
version=1.15.5
tarball="ruby-ffi_${version}+dfsg.orig.tar.xz"
sha256=a6b935a636e93f8e3833b9957dfaa2acda18066057c0d03848aa2f7234d7708b
gem="$cache/ffi-$version.gem"
if [ ! -f "$gem" ]; then
  mkdir -p "$cache"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  curl -fsS -o "$work/$tarball" "http://deb.debian.org/debian/pool/main/r/ruby-ffi/$tarball"
  echo "$sha256  $work/$tarball" | sha256sum -c --quiet -
  tar -xJf "$work/$tarball" -C "$work"
  # ffi.gemspec lists its files with `git ls-files`: outside git, list them here (the bundled
  # libffi is not in Debian's tarball, so the extension always builds against the system's).
  (cd "$work/ffi-$version" && ruby -rrubygems/package -e '
    spec = Gem::Specification.load("ffi.gemspec")
    spec.files = Dir["lib/**/*", "ext/ffi_c/**/*", "LICENSE", "COPYING", "README.md", "CHANGELOG.md",
                     "Rakefile", "ffi.gemspec"].select { |f| File.file?(f) }
    Gem::Package.build(spec)' 2>/dev/null >/dev/null)
  mv "$work/ffi-$version/ffi-$version.gem" "$gem"
fi
echo "$gem"
