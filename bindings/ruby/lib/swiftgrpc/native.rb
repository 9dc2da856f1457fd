# frozen_string_literal: true

require "ffi"
require_relative "version"

module SwiftGRPC
  # libswiftgrpc.so could not be found or loaded, or its version is not the one this gem speaks.
  class LibraryNotFound < LoadError; end

  # The raw layer: every C function of include/swiftgrpc.h attached once, its prototype in the
  # comment above it. Nothing here knows gRPC; the idiomatic API is built on top of it.
  #
  # Functions that can wait (queue_next, shutdown, destroy, wait_state_change) are attached with
  # `blocking: true`, so the VM lock is released while they wait. The others only validate,
  # enqueue and signal (microseconds) and keep the lock.
  #
  # Library discovery: the SWIFTGRPC_LIBRARY environment variable, then the copy inside the gem
  # (lib/swiftgrpc/libswiftgrpc.so), then the build tree of a source checkout (build/ by CMake,
  # .build/release/ by SwiftPM). The library's version number must equal {ABI_VERSION_NUMBER}.
  module Native
    extend FFI::Library

    OK = 0
    E_NULL_ARGUMENT = -1
    E_BAD_HANDLE = -2
    E_INVALID_ARGUMENT = -3
    E_INVALID_METADATA = -4
    E_INVALID_UTF8 = -5
    E_WRONG_STATE = -6
    E_UNKNOWN_TOKEN = -7
    E_TOKEN_CLOSED = -8
    E_ALREADY_COMPLETED = -9
    E_ALREADY_EXISTS = -10
    E_SYSTEM = -11
    E_TOO_LARGE = -12
    E_RECURSIVE_CALL = -13
    E_TIMEOUT = -14
    E_SHUTDOWN = -15
    E_NO_MEMORY = -16

    KIND_UNARY = 0
    KIND_SERVER_STREAMING = 1
    KIND_CLIENT_STREAMING = 2
    KIND_BIDI_STREAMING = 3

    EVENT_CALL = 1
    EVENT_MESSAGE = 2
    EVENT_HALF_CLOSE = 3
    EVENT_CANCELLED = 4
    EVENT_CLIENT_INITIAL_METADATA = 5
    EVENT_CLIENT_MESSAGE = 6
    EVENT_CLIENT_SEND_DONE = 7
    EVENT_CLIENT_STATUS = 8
    EVENT_SEND_DONE = 9
    EVENT_CREDENTIALS_REQUEST = 10
    EVENT_CREDENTIALS_FETCH = 11
    EVENT_SERVER_SHUTDOWN = 12

    CLIENT_AUTH_NONE = 0
    CLIENT_AUTH_REQUEST = 1
    CLIENT_AUTH_REQUIRE = 2

    OPT_MAX_RECV_MESSAGE_SIZE = 1
    OPT_MAX_SEND_MESSAGE_SIZE = 2
    OPT_MAX_CONCURRENT_STREAMS = 3
    OPT_MAX_METADATA_SIZE = 4
    OPT_HANDSHAKE_TIMEOUT_MS = 5
    OPT_MAX_CONTROL_FRAMES_PER_SECOND = 6
    OPT_DEFAULT_COMPRESSION = 7
    OPT_KEEPALIVE_TIME_MS = 8
    OPT_KEEPALIVE_TIMEOUT_MS = 9
    OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS = 10
    OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS = 11
    OPT_MAX_PING_STRIKES = 12
    OPT_MAX_CONNECTION_IDLE_MS = 13
    OPT_MAX_CONNECTION_AGE_MS = 14
    OPT_MAX_CONNECTION_AGE_GRACE_MS = 15
    OPT_SO_REUSEPORT = 16
    OPT_MAX_CONCURRENT_CALLS = 17 # (0.9.0)

    COMPRESS_NONE = 0
    COMPRESS_DEFLATE = 1
    COMPRESS_GZIP = 2
    WRITE_NO_COMPRESS = 1
    MESSAGE_COMPRESSED = 1

    CHANNEL_CONNECT_TIMEOUT_MS = 1
    CHANNEL_INITIAL_BACKOFF_MS = 2
    CHANNEL_MAX_BACKOFF_MS = 3
    CHANNEL_KEEPALIVE_TIME_MS = 4
    CHANNEL_KEEPALIVE_TIMEOUT_MS = 5
    CHANNEL_KEEPALIVE_PERMIT_WITHOUT_CALLS = 6
    CHANNEL_MAX_SEND_MESSAGE_SIZE = 7
    CHANNEL_MAX_RECV_MESSAGE_SIZE = 8
    CHANNEL_DEFAULT_TIMEOUT_MS = 9
    CHANNEL_USER_AGENT = 10
    CHANNEL_LB_POLICY = 11
    CHANNEL_AUTHORITY = 12
    CHANNEL_MAX_METADATA_SIZE = 13
    CHANNEL_DEFAULT_COMPRESSION = 14
    CHANNEL_MIN_TIME_BETWEEN_RESOLUTIONS_MS = 15
    LB_PICK_FIRST = 0
    LB_ROUND_ROBIN = 1

    STATE_IDLE = 0
    STATE_CONNECTING = 1
    STATE_READY = 2
    STATE_TRANSIENT_FAILURE = 3
    STATE_SHUTDOWN = 4

    CALL_WAIT_FOR_READY = 1
    CALL_COMPRESS_NONE = 2
    CALL_COMPRESS_DEFLATE = 4
    CALL_COMPRESS_GZIP = 8
    DEADLINE_DEFAULT = 0
    DEADLINE_NONE = (1 << 63) - 1

    # typedef struct swiftgrpc_metadata { const char *key; size_t key_len;
    #                                     const char *value; size_t value_len; }
    METADATA_SIZE = 32
    # typedef struct swiftgrpc_channel_arg { int32_t key; int64_t int_value;
    #                                        const char *string_value; }
    CHANNEL_ARG_SIZE = 24
    # typedef struct swiftgrpc_event (include/swiftgrpc.h), read with one get_bytes + unpack:
    #   int32 type, kind; uint64 token, server; method ptr, len; authority ptr, len; peer ptr,
    #   len; metadata ptr, count; int64 deadline_ns; message ptr, len; int32 has_message,
    #   status_code; uint64 channel; tag ptr; status_message ptr, len; trailers ptr, count;
    #   auth ptr, count; uint32 message_flags (0.8.0), padding.
    EVENT_SIZE = 192
    EVENT_LAYOUT = "l2Q10qQ2l2Q8L"

    # typedef struct swiftgrpc_tls_identity { const char *certificate_chain;
    #   size_t certificate_chain_len; const char *private_key; size_t private_key_len; }
    TLS_IDENTITY_SIZE = 32
    # typedef struct swiftgrpc_call_args { uint32_t struct_size; const char *method; int kind;
    #   const swiftgrpc_metadata *metadata; size_t metadata_count; const void *message;
    #   size_t message_len; int64_t deadline_ns; uint32_t flags; swiftgrpc_queue queue;
    #   swiftgrpc_host_fn fn; void *tag; swiftgrpc_call_credentials credentials; }
    CALL_ARGS_SIZE = 104
    CALL_ARGS_LAYOUT = "L x4 Q l x4 Q Q Q Q q L x4 Q Q Q Q"

    # typedef void (*swiftgrpc_host_fn)(const swiftgrpc_event *event, void *user_data);
    callback :host_fn, %i[pointer pointer], :void
    # typedef void (*swiftgrpc_host_batch_fn)(const swiftgrpc_event *const *events, size_t count,
    #                                         void *user_data);
    callback :host_batch_fn, %i[pointer size_t pointer], :void

    # @return [Array<String>] the paths tried, in order
    def self.candidates
      env = ENV["SWIFTGRPC_LIBRARY"]
      return [env] if env && !env.empty? # an explicit choice is not second-guessed

      here = __dir__
      root = File.expand_path("../../../..", here) # bindings/ruby/lib/swiftgrpc -> checkout
      [File.join(here, "libswiftgrpc.so"),
       File.join(root, "build", "libswiftgrpc.so"),
       File.join(root, ".build", "release", "libswiftgrpc.so")]
    end

    # @return [String] the path of the library to load
    def self.find_library
      tried = []
      candidates.each do |path|
        return path if File.exist?(path)

        tried << "#{path} (missing)"
      end
      raise LibraryNotFound, "libswiftgrpc.so not found; set SWIFTGRPC_LIBRARY. Tried: " +
                             tried.join("; ")
    end

    LIBRARY_PATH = find_library
    begin
      ffi_lib LIBRARY_PATH
    rescue LoadError => e
      raise LibraryNotFound, "cannot load #{LIBRARY_PATH}: #{e.message}"
    end

    # int swiftgrpc_version_number(void);
    attach_function :swiftgrpc_version_number, [], :int
    found = swiftgrpc_version_number
    if found != ABI_VERSION_NUMBER
      raise LibraryNotFound, "#{LIBRARY_PATH} is libswiftgrpc version number #{found}, but " \
                             "this gem needs #{ABI_VERSION_NUMBER}; rebuild the library or " \
                             "reinstall the gem"
    end

    # const char *swiftgrpc_version_string(void);
    attach_function :swiftgrpc_version_string, [], :string
    # const char *swiftgrpc_errstr(int code);
    attach_function :swiftgrpc_errstr, [:int], :string
    # const char *swiftgrpc_last_error(void);
    attach_function :swiftgrpc_last_error, [], :string
    # int swiftgrpc_runtime_create(uint32_t loop_threads, swiftgrpc_runtime *out);
    attach_function :swiftgrpc_runtime_create, %i[uint32 pointer], :int, blocking: true
    # int swiftgrpc_runtime_destroy(swiftgrpc_runtime runtime);
    attach_function :swiftgrpc_runtime_destroy, [:uint64], :int, blocking: true
    # int64_t swiftgrpc_now_ns(void);
    attach_function :swiftgrpc_now_ns, [], :int64
    # int swiftgrpc_queue_create(swiftgrpc_runtime runtime, swiftgrpc_queue *out);
    attach_function :swiftgrpc_queue_create, %i[uint64 pointer], :int
    # int swiftgrpc_queue_next(swiftgrpc_queue queue, int64_t timeout_ms, swiftgrpc_event **out);
    attach_function :swiftgrpc_queue_next, %i[uint64 int64 pointer], :int, blocking: true
    # int swiftgrpc_queue_next_batch(swiftgrpc_queue queue, int64_t timeout_ms,
    #                                swiftgrpc_event **out, size_t max, size_t *out_count);
    attach_function :swiftgrpc_queue_next_batch, %i[uint64 int64 pointer size_t pointer], :int,
                    blocking: true
    # The same two functions attached again without releasing the VM lock, for takes with a
    # zero timeout (they return at once): a fiber scheduler's wait polls with them.
    attach_function :queue_take_now, :swiftgrpc_queue_next, %i[uint64 int64 pointer], :int
    attach_function :queue_take_batch_now, :swiftgrpc_queue_next_batch,
                    %i[uint64 int64 pointer size_t pointer], :int
    # int swiftgrpc_queue_fd(swiftgrpc_queue queue, int *out);
    attach_function :swiftgrpc_queue_fd, %i[uint64 pointer], :int
    # int swiftgrpc_queue_shutdown(swiftgrpc_queue queue);
    attach_function :swiftgrpc_queue_shutdown, [:uint64], :int
    # int swiftgrpc_queue_destroy(swiftgrpc_queue queue);
    attach_function :swiftgrpc_queue_destroy, [:uint64], :int, blocking: true
    # void swiftgrpc_event_free(swiftgrpc_event *event);
    attach_function :swiftgrpc_event_free, [:pointer], :void
    # int swiftgrpc_server_create(swiftgrpc_runtime runtime, swiftgrpc_server *out);
    attach_function :swiftgrpc_server_create, %i[uint64 pointer], :int
    # int swiftgrpc_server_set_option(swiftgrpc_server server, int option, int64_t value);
    attach_function :swiftgrpc_server_set_option, %i[uint64 int int64], :int
    # int swiftgrpc_register_host_fn(swiftgrpc_server server, const char *method, int kind,
    #                                swiftgrpc_host_fn fn, void *user_data);
    attach_function :swiftgrpc_register_host_fn, %i[uint64 string int host_fn pointer], :int,
                    blocking: true
    # int swiftgrpc_register_host_batch_fn(swiftgrpc_server server, const char *method, int kind,
    #                                      swiftgrpc_host_batch_fn fn, void *user_data);
    attach_function :swiftgrpc_register_host_batch_fn, %i[uint64 string int host_batch_fn pointer], :int,
                    blocking: true
    # int swiftgrpc_register_host_queue(swiftgrpc_server server, const char *method, int kind,
    #                                   swiftgrpc_queue queue);
    attach_function :swiftgrpc_register_host_queue, %i[uint64 string int uint64], :int
    # int swiftgrpc_server_listen(swiftgrpc_server server, const char *address, int *bound_port);
    attach_function :swiftgrpc_server_listen, %i[uint64 string pointer], :int
    HEALTH_UNKNOWN = 0
    HEALTH_SERVING = 1
    HEALTH_NOT_SERVING = 2
    HEALTH_SERVICE_UNKNOWN = 3
    # int swiftgrpc_server_enable_health(swiftgrpc_server server);
    attach_function :swiftgrpc_server_enable_health, %i[uint64], :int
    # int swiftgrpc_server_set_health(swiftgrpc_server server, const char *service, int status);
    attach_function :swiftgrpc_server_set_health, %i[uint64 string int], :int
    # int swiftgrpc_server_start(swiftgrpc_server server);
    attach_function :swiftgrpc_server_start, [:uint64], :int
    # int swiftgrpc_server_shutdown(swiftgrpc_server server, int64_t grace_ms);
    attach_function :swiftgrpc_server_shutdown, %i[uint64 int64], :int, blocking: true
    # int swiftgrpc_server_shutdown_notify(swiftgrpc_server server, int64_t grace_ms,
    #                                      swiftgrpc_queue queue, void *tag);
    attach_function :swiftgrpc_server_shutdown_notify, %i[uint64 int64 uint64 uintptr_t], :int
    # int swiftgrpc_server_destroy(swiftgrpc_server server);
    attach_function :swiftgrpc_server_destroy, [:uint64], :int, blocking: true
    # int swiftgrpc_server_probe(swiftgrpc_server server, const char *method, const void *message,
    #                            size_t message_len, uint64_t iterations, int64_t timeout_ms,
    #                            int64_t *out_elapsed_ns);
    attach_function :swiftgrpc_server_probe, %i[uint64 string pointer size_t uint64 int64 pointer], :int,
                    blocking: true
    # int swiftgrpc_call_send_initial_metadata(swiftgrpc_server server, uint64_t token,
    #                                          const swiftgrpc_metadata *metadata, size_t count);
    attach_function :swiftgrpc_call_send_initial_metadata, %i[uint64 uint64 pointer size_t], :int
    # int swiftgrpc_call_send_message(swiftgrpc_server server, uint64_t token, const void *data,
    #                                 size_t len);
    attach_function :swiftgrpc_call_send_message, %i[uint64 uint64 buffer_in size_t], :int
    # int swiftgrpc_call_send_message_v2(swiftgrpc_server server, uint64_t token, const void *data,
    #                                    size_t len, uint32_t flags);
    attach_function :swiftgrpc_call_send_message_v2, %i[uint64 uint64 buffer_in size_t uint32], :int
    # int swiftgrpc_call_set_compression(swiftgrpc_server server, uint64_t token, int algorithm);
    attach_function :swiftgrpc_call_set_compression, %i[uint64 uint64 int], :int
    # int swiftgrpc_call_set_tag(swiftgrpc_server server, uint64_t token, void *tag);
    attach_function :swiftgrpc_call_set_tag, %i[uint64 uint64 uintptr_t], :int
    # int swiftgrpc_call_read(swiftgrpc_server server, uint64_t token);
    attach_function :swiftgrpc_call_read, %i[uint64 uint64], :int
    # int swiftgrpc_host_complete(swiftgrpc_server server, uint64_t token, const void *message,
    #                             size_t message_len, int status_code,
    #                             const char *status_message,
    #                             const swiftgrpc_metadata *trailers, size_t trailer_count);
    attach_function :swiftgrpc_host_complete,
                    %i[uint64 uint64 buffer_in size_t int string pointer size_t], :int
    # int swiftgrpc_channel_create(swiftgrpc_runtime runtime, const char *target,
    #                              const swiftgrpc_channel_arg *args, size_t arg_count,
    #                              swiftgrpc_channel *out);
    attach_function :swiftgrpc_channel_create, %i[uint64 string pointer size_t pointer], :int
    # int swiftgrpc_channel_state(swiftgrpc_channel channel, int try_to_connect, int *out_state);
    attach_function :swiftgrpc_channel_state, %i[uint64 int pointer], :int
    # int swiftgrpc_channel_wait_state_change(swiftgrpc_channel channel, int last_state,
    #                                         int64_t timeout_ms, int *out_state);
    attach_function :swiftgrpc_channel_wait_state_change, %i[uint64 int int64 pointer], :int,
                    blocking: true
    # int swiftgrpc_channel_close(swiftgrpc_channel channel);
    attach_function :swiftgrpc_channel_close, [:uint64], :int
    # int swiftgrpc_channel_destroy(swiftgrpc_channel channel);
    attach_function :swiftgrpc_channel_destroy, [:uint64], :int, blocking: true
    # int swiftgrpc_client_call_start(swiftgrpc_channel channel, const char *method, int kind,
    #                                 const swiftgrpc_metadata *metadata, size_t metadata_count,
    #                                 const void *message, size_t message_len,
    #                                 int64_t deadline_ns, uint32_t flags, swiftgrpc_queue queue,
    #                                 swiftgrpc_host_fn fn, void *tag, swiftgrpc_call *out);
    attach_function :swiftgrpc_client_call_start,
                    %i[uint64 string int pointer size_t buffer_in size_t int64 uint32 uint64
                       host_fn pointer pointer], :int
    # int swiftgrpc_client_send_message(swiftgrpc_channel channel, swiftgrpc_call call,
    #                                   const void *data, size_t len);
    attach_function :swiftgrpc_client_send_message, %i[uint64 uint64 buffer_in size_t], :int
    # int swiftgrpc_client_send_message_v2(swiftgrpc_channel channel, swiftgrpc_call call,
    #                                      const void *data, size_t len, uint32_t flags);
    attach_function :swiftgrpc_client_send_message_v2, %i[uint64 uint64 buffer_in size_t uint32], :int
    # int swiftgrpc_client_half_close(swiftgrpc_channel channel, swiftgrpc_call call);
    attach_function :swiftgrpc_client_half_close, %i[uint64 uint64], :int
    # int swiftgrpc_client_read(swiftgrpc_channel channel, swiftgrpc_call call);
    attach_function :swiftgrpc_client_read, %i[uint64 uint64], :int
    # int swiftgrpc_client_cancel(swiftgrpc_channel channel, swiftgrpc_call call);
    attach_function :swiftgrpc_client_cancel, %i[uint64 uint64], :int

    # int swiftgrpc_client_call_start_v2(swiftgrpc_channel channel,
    #                                    const swiftgrpc_call_args *args, swiftgrpc_call *out);
    attach_function :swiftgrpc_client_call_start_v2, %i[uint64 pointer pointer], :int

    # int swiftgrpc_server_credentials_create(const swiftgrpc_tls_identity *identities,
    #                                         size_t count, const char *client_roots,
    #                                         size_t client_roots_len, int client_auth,
    #                                         swiftgrpc_server_credentials *out);
    attach_function :swiftgrpc_server_credentials_create,
                    %i[pointer size_t buffer_in size_t int pointer], :int
    # int swiftgrpc_server_credentials_destroy(swiftgrpc_server_credentials credentials);
    attach_function :swiftgrpc_server_credentials_destroy, [:uint64], :int
    # int swiftgrpc_server_listen_secure(swiftgrpc_server server, const char *address,
    #                                    swiftgrpc_server_credentials credentials,
    #                                    int *bound_port);
    attach_function :swiftgrpc_server_listen_secure, %i[uint64 string uint64 pointer], :int
    # int swiftgrpc_channel_credentials_create(const char *roots, size_t roots_len,
    #                                          const swiftgrpc_tls_identity *identity,
    #                                          const char *server_name_override,
    #                                          swiftgrpc_channel_credentials *out);
    attach_function :swiftgrpc_channel_credentials_create,
                    %i[buffer_in size_t pointer string pointer], :int
    # int swiftgrpc_channel_credentials_destroy(swiftgrpc_channel_credentials credentials);
    attach_function :swiftgrpc_channel_credentials_destroy, [:uint64], :int
    # int swiftgrpc_channel_create_secure(swiftgrpc_runtime runtime, const char *target,
    #                                     swiftgrpc_channel_credentials credentials,
    #                                     const swiftgrpc_channel_arg *args, size_t arg_count,
    #                                     swiftgrpc_channel *out);
    attach_function :swiftgrpc_channel_create_secure, %i[uint64 string uint64 pointer size_t pointer], :int
    # int swiftgrpc_channel_credentials_compose(swiftgrpc_channel_credentials channel_credentials,
    #                                           swiftgrpc_call_credentials call_credentials,
    #                                           swiftgrpc_channel_credentials *out);
    attach_function :swiftgrpc_channel_credentials_compose, %i[uint64 uint64 pointer], :int
    # int swiftgrpc_call_credentials_create_access_token(const char *token,
    #                                                    swiftgrpc_call_credentials *out);
    attach_function :swiftgrpc_call_credentials_create_access_token, %i[string pointer], :int
    # int swiftgrpc_call_credentials_create_plugin(swiftgrpc_queue queue, swiftgrpc_host_fn fn,
    #                                              void *user_data,
    #                                              swiftgrpc_call_credentials *out);
    attach_function :swiftgrpc_call_credentials_create_plugin, %i[uint64 host_fn pointer pointer], :int
    # int swiftgrpc_call_credentials_answer(uint64_t request, const swiftgrpc_metadata *metadata,
    #                                       size_t count, int status_code,
    #                                       const char *status_message);
    attach_function :swiftgrpc_call_credentials_answer, %i[uint64 pointer size_t int string], :int
    # int swiftgrpc_call_credentials_compose(swiftgrpc_call_credentials a,
    #                                        swiftgrpc_call_credentials b,
    #                                        swiftgrpc_call_credentials *out);
    attach_function :swiftgrpc_call_credentials_compose, %i[uint64 uint64 pointer], :int
    # int swiftgrpc_call_credentials_destroy(swiftgrpc_call_credentials credentials);
    attach_function :swiftgrpc_call_credentials_destroy, [:uint64], :int

    # @param code [Integer] a SWIFTGRPC_E_* value
    # @return [String] the library's static text for it
    def self.errstr(code)
      swiftgrpc_errstr(code).to_s
    end

    # @return [String, nil] the calling thread's last error message
    def self.last_error
      swiftgrpc_last_error
    end
  end

  # A swiftgrpc_* function refused an operation. {#code} is the SWIFTGRPC_E_* value,
  # {#function} the C function, and the message is the library's explanation.
  class NativeError < StandardError
    # @return [Integer] the SWIFTGRPC_E_* result code
    attr_reader :code
    # @return [String] the C function that returned it
    attr_reader :function

    def initialize(function, code, message = nil)
      @function = function
      @code = code
      text = message && !message.empty? ? message : Native.errstr(code)
      super("#{function}: #{text} (#{Native.errstr(code)}, #{code})")
    end

    # Raises a NativeError for a negative result, with the thread's last error message.
    # @return [Integer] rc when it is not negative
    def self.check(rc, function)
      raise new(function, rc, Native.last_error) if rc.negative?

      rc
    end
  end
end
