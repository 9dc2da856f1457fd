# frozen_string_literal: true

module SwiftGRPC
  # The gem's version.
  VERSION = "0.9.0"
  # The ABI version this binding speaks: SWIFTGRPC_VERSION_NUMBER of include/swiftgrpc.h.
  ABI_VERSION_NUMBER = 9000
end
