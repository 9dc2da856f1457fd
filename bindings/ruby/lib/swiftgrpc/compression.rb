# frozen_string_literal: true

module SwiftGRPC
  # Message compression, named as the grpc gem names it. swiftgrpc inflates whatever a peer sends
  # compressed and advertises every algorithm; what it sends is compressed as the channel
  # (`compression:`, or the gem's channel argument "grpc.default_compression_algorithm"), the
  # call (the gem's metadata key "grpc-internal-encoding-request"), the server
  # (`Server.new(compression:)`) or the handler ({ServerCall#set_compression}) asks, toward peers
  # that accept it. A message written with {WriteFlags::NO_COMPRESS} goes uncompressed.
  module Compression
    # Algorithm names (the gem's) and numbers (gRPC C-core's, SWIFTGRPC_COMPRESS_*).
    ALGORITHMS = { identity: Native::COMPRESS_NONE, none: Native::COMPRESS_NONE,
                   deflate: Native::COMPRESS_DEFLATE, gzip: Native::COMPRESS_GZIP }.freeze
    # The request metadata key with which the gem (gRPC C-core) chooses one call's compression.
    REQUEST_KEY = "grpc-internal-encoding-request"
    CALL_FLAGS = [Native::CALL_COMPRESS_NONE, Native::CALL_COMPRESS_DEFLATE,
                  Native::CALL_COMPRESS_GZIP].freeze

    # @param value [Symbol, String, Integer] :identity, :deflate, :gzip (or their names), 0-2
    # @return [Integer] the algorithm number
    # @raise [ArgumentError] for anything else, naming `where`
    def self.algorithm(value, where)
      number = case value
               when Integer then value if (0..2).cover?(value)
               when Symbol, String then ALGORITHMS[value.to_s.downcase.to_sym]
               end
      return number if number

      raise ArgumentError, "#{where}: unknown compression #{value.inspect} " \
                           "(:identity, :deflate, :gzip, or 0, 1, 2)"
    end

    # @api private — request metadata without {REQUEST_KEY}, and the call flags it chose
    # @return [Array(Hash, Integer)]
    def self.split_call_metadata(metadata)
      return [metadata, 0] if !metadata.is_a?(Hash) || metadata.empty?

      key = metadata.keys.find { |k| k.to_s.downcase == REQUEST_KEY }
      return [metadata, 0] if key.nil?

      rest = metadata.reject { |k, _| k.equal?(key) }
      [rest, CALL_FLAGS[algorithm(metadata[key], REQUEST_KEY)]]
    end
  end

  # Flags of one written message, with the grpc gem's names and values
  # (GRPC::Core::WriteFlags): set a call's `write_flag` before #write.
  module WriteFlags
    # This message goes uncompressed, whatever the call's compression.
    NO_COMPRESS = 2

    # @api private — the SWIFTGRPC_WRITE_* flags of a write_flag
    def self.native(flag)
      return 0 if flag.nil? || flag.zero?
      return Native::WRITE_NO_COMPRESS if flag == NO_COMPRESS

      raise ArgumentError, "write_flag #{flag.inspect} is not supported by swiftgrpc (only NO_COMPRESS)"
    end
  end
end
