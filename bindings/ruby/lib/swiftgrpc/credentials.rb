# frozen_string_literal: true

module SwiftGRPC
  # Releases a credentials handle; shared by the credential classes' finalizers (a releaser
  # that does not capture the object).
  # @api private
  module CredentialsHandle
    def self.releaser(function, handle)
      proc { Native.public_send(function, handle) }
    end

    def self.pem(value, what)
      return nil if value.nil?
      raise TypeError, "#{what} must be a PEM String, not #{value.class}" unless value.is_a?(String)

      value.b
    end

    def self.check(rc, function)
      NativeError.raise_for(rc, function) if rc.negative?
    end

    # A swiftgrpc_tls_identity array for `pairs` ([[key, chain], ...]).
    # @return [Array(FFI::MemoryPointer, Array)] the array and the buffers it points into
    def self.identities(pairs)
      table = FFI::MemoryPointer.new(:char, Native::TLS_IDENTITY_SIZE * pairs.size)
      keep = []
      words = pairs.flat_map do |key, chain|
        c = FFI::MemoryPointer.new(:char, chain.bytesize).put_bytes(0, chain)
        k = FFI::MemoryPointer.new(:char, key.bytesize).put_bytes(0, key)
        keep << c << k
        [c.address, chain.bytesize, k.address, key.bytesize]
      end
      table.put_bytes(0, words.pack("Q*"))
      [table, keep]
    end
  end

  # TLS settings of a server port, the grpc gem's GRPC::Core::ServerCredentials:
  #
  #   creds = SwiftGRPC::ServerCredentials.new(ca_pem, [{ private_key: key, cert_chain: cert }], true)
  #   server.add_http2_port("0.0.0.0:443", creds)
  #
  # With `force_client_auth`, clients must present a certificate that chains to `pem_root_certs`
  # (mutual TLS); otherwise none is asked for (as in the gem).
  class ServerCredentials
    # @api private
    attr_reader :handle

    # @param pem_root_certs [String, nil] roots client certificates must chain to
    # @param key_cert_pairs [Array<Hash>] `{ private_key:, cert_chain: }` (PEM); the first serves
    #   by default, another when the client's SNI names a host its certificate covers
    # @param force_client_auth [Boolean]
    def initialize(pem_root_certs, key_cert_pairs, force_client_auth = false)
      unless key_cert_pairs.is_a?(Array) && !key_cert_pairs.empty?
        raise ArgumentError, "key_cert_pairs must be a non-empty Array of { private_key:, cert_chain: }"
      end
      if force_client_auth && pem_root_certs.nil?
        raise ArgumentError, "force_client_auth needs pem_root_certs (the roots client certificates chain to)"
      end

      pairs = key_cert_pairs.map do |h|
        raise TypeError, "each key_cert_pair must be a Hash, not #{h.class}" unless h.is_a?(Hash)

        [CredentialsHandle.pem(h.fetch(:private_key) { h.fetch("private_key") }, "private_key"),
         CredentialsHandle.pem(h.fetch(:cert_chain) { h.fetch("cert_chain") }, "cert_chain")]
      rescue KeyError
        raise ArgumentError, "each key_cert_pair needs :private_key and :cert_chain"
      end
      table, keep = CredentialsHandle.identities(pairs)
      roots = CredentialsHandle.pem(pem_root_certs, "pem_root_certs")
      out = FFI::MemoryPointer.new(:uint64)
      auth = force_client_auth ? Native::CLIENT_AUTH_REQUIRE : Native::CLIENT_AUTH_NONE
      rc = Native.swiftgrpc_server_credentials_create(table, pairs.size, roots, roots ? roots.bytesize : 0,
                                                      auth, out)
      keep.clear
      CredentialsHandle.check(rc, "swiftgrpc_server_credentials_create")
      @handle = out.read_uint64
      ObjectSpace.define_finalizer(self, CredentialsHandle.releaser(:swiftgrpc_server_credentials_destroy, @handle))
    end
  end

  # Metadata that authenticates calls, the gem's GRPC::Core::CallCredentials: a proc called for
  # every call with `{ jwt_aud_uri: service_url, method_name: name }`, returning the metadata
  # Hash to add. An exception it raises fails the call with UNAVAILABLE ("Getting metadata from
  # plugin failed with error: #<Class: message>", as the gem says). Procs run one at a time on
  # one Ruby thread, as the gem runs them. Sent only over TLS.
  class CallCredentials
    # @api private
    attr_reader :handle, :parts

    # @param auth_proc [Proc]
    def initialize(auth_proc = nil, _handle: nil, _parts: nil)
      if _handle
        @handle = _handle
        @parts = _parts
      else
        raise TypeError, "CallCredentials needs a Proc (or anything with #call)" unless auth_proc.respond_to?(:call)

        @proc = auth_proc
        @handle = Plugins.create(self)
        @parts = []
      end
      ObjectSpace.define_finalizer(self, CredentialsHandle.releaser(:swiftgrpc_call_credentials_destroy, @handle))
    end

    # "authorization: Bearer <token>" on every call (grpcio's access_token_call_credentials).
    # @return [CallCredentials]
    def self.access_token(token)
      raise TypeError, "token must be a String, not #{token.class}" unless token.is_a?(String)

      out = FFI::MemoryPointer.new(:uint64)
      CredentialsHandle.check(Native.swiftgrpc_call_credentials_create_access_token(token, out),
                              "swiftgrpc_call_credentials_create_access_token")
      new(_handle: out.read_uint64, _parts: [])
    end

    # These credentials, then each of `others`.
    # @return [CallCredentials]
    def compose(*others)
      others.reduce(self) do |acc, c|
        raise TypeError, "compose takes CallCredentials, not #{c.class}" unless c.is_a?(CallCredentials)

        out = FFI::MemoryPointer.new(:uint64)
        CredentialsHandle.check(Native.swiftgrpc_call_credentials_compose(acc.handle, c.handle, out),
                                "swiftgrpc_call_credentials_compose")
        CallCredentials.new(_handle: out.read_uint64, _parts: [acc, c])
      end
    end

    # @api private — runs the proc for one request and answers it
    def answer(request, service_url, method_name)
      md = @proc.call({ jwt_aud_uri: service_url, method_name: method_name })
      md = {} if md.nil?
      table, count, keep = Metadata.encode(md)
      rc = Native.swiftgrpc_call_credentials_answer(request, table, count, 0, nil)
      keep.nil?
      if rc == Native::E_INVALID_METADATA
        Plugins.fail(request, "invalid metadata from the plugin: #{Native.last_error}")
      end
    rescue StandardError => e
      Plugins.fail(request, e.inspect)
    end
  end

  # The process's metadata plugins: one queue, one Ruby thread that answers their requests.
  # @api private
  module Plugins
    @lock = Mutex.new
    @queue = nil
    @thread = nil
    @by_id = {}
    @next_id = 0

    class << self
      # Registers `creds` (weakly: a collected plugin's requests fail) and returns its handle.
      def create(creds)
        id, queue = @lock.synchronize do
          start unless @queue
          @next_id += 1
          @by_id[@next_id] = WeakRef.new(creds)
          [@next_id, @queue]
        end
        out = FFI::MemoryPointer.new(:uint64)
        CredentialsHandle.check(Native.swiftgrpc_call_credentials_create_plugin(queue, nil, FFI::Pointer.new(id), out),
                                "swiftgrpc_call_credentials_create_plugin")
        out.read_uint64
      end

      def fail(request, message)
        Native.swiftgrpc_call_credentials_answer(request, nil, 0, 14, message.b) # UNAVAILABLE
      end

      private

      def start
        @queue = Runtime.new_queue
        queue = @queue
        @thread = Thread.new { run(queue) }
        @thread.name = "swiftgrpc-auth-plugins" if @thread.respond_to?(:name=)
        Runtime.register do
          Native.swiftgrpc_queue_shutdown(queue)
          @thread.join(5)
          @lock.synchronize { @queue = nil }
        end
      end

      def run(queue)
        slots = FFI::MemoryPointer.new(:pointer, 64)
        count = FFI::MemoryPointer.new(:size_t)
        loop do
          events = Runtime.next_events(queue, Channel::POLL_MS, slots, count)
          if events.is_a?(Integer)
            next if events == Native::E_TIMEOUT

            return
          end
          events.each { |ev| serve(ev) }
        rescue StandardError => e # never let one request end the thread
          warn "swiftgrpc: auth plugin thread: #{e.class}: #{e.message}"
        end
      end

      def serve(ev)
        return unless ev.type == Native::EVENT_CREDENTIALS_REQUEST

        ref = @lock.synchronize { @by_id[ev.tag] }
        creds = begin
          ref&.__getobj__
        rescue WeakRef::RefError
          nil
        end
        if creds
          creds.answer(ev.token, ev.authority, ev.method)
        else
          fail(ev.token, "the CallCredentials were garbage-collected")
        end
      rescue StandardError => e
        fail(ev.token, "the plugin thread failed: #{e.class}")
        warn "swiftgrpc: auth plugin thread: #{e.class}: #{e.message}"
      end
    end
  end

  # TLS settings of a channel, the gem's GRPC::Core::ChannelCredentials:
  # `ChannelCredentials.new(pem_root_certs = nil, private_key = nil, cert_chain = nil)`; nil
  # roots: the system's trust store. `compose(call_creds, ...)` adds call credentials to every
  # call of channels made with the result.
  class ChannelCredentials
    # @api private
    attr_reader :call_credentials

    def initialize(pem_root_certs = nil, private_key = nil, cert_chain = nil, _call: nil)
      if private_key.nil? != cert_chain.nil?
        raise ArgumentError, "private_key and cert_chain must be given together"
      end

      @roots = CredentialsHandle.pem(pem_root_certs, "pem_root_certs")
      @key = CredentialsHandle.pem(private_key, "private_key")
      @chain = CredentialsHandle.pem(cert_chain, "cert_chain")
      @call_credentials = _call
      handle = create_handle(nil) # checks the PEM texts now
      Native.swiftgrpc_channel_credentials_destroy(handle)
    end

    # @return [ChannelCredentials] these, with `call_creds` on every call
    def compose(*call_creds)
      raise ArgumentError, "compose needs at least one CallCredentials" if call_creds.empty?

      both = @call_credentials ? @call_credentials.compose(*call_creds) : call_creds[0].compose(*call_creds[1..])
      ChannelCredentials.new(@roots, @key, @chain, _call: both)
    end

    # @api private — a new handle (the caller destroys it) verifying `server_name_override`
    def create_handle(server_name_override)
      identity = nil
      keep = nil
      if @key
        identity, keep = CredentialsHandle.identities([[@key, @chain]])
      end
      out = FFI::MemoryPointer.new(:uint64)
      rc = Native.swiftgrpc_channel_credentials_create(@roots, @roots ? @roots.bytesize : 0, identity,
                                                       server_name_override, out)
      keep&.clear
      CredentialsHandle.check(rc, "swiftgrpc_channel_credentials_create")
      base = out.read_uint64
      return base unless @call_credentials

      rc = Native.swiftgrpc_channel_credentials_compose(base, @call_credentials.handle, out)
      Native.swiftgrpc_channel_credentials_destroy(base)
      CredentialsHandle.check(rc, "swiftgrpc_channel_credentials_compose")
      out.read_uint64
    end
  end
end
