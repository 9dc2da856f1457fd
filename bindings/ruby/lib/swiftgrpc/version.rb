# frozen_string_literal: true

module SwiftGRPC
  # The gem's version.
  VERSION = "0.8.0"
  # The ABI version this binding speaks: SWIFTGRPC_VERSION_NUMBER of include/swiftgrpc.h.
  ABI_VERSION_NUMBER = 8000
end
