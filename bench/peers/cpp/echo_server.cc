// The C++ gRPC (Debian libgrpc++ 1.51) reference server of the benchmark suite: a generic
// callback-API service with the methods of bench/c/bench_server.c on raw bytes:
//   Get (unary echo), Stream (COUNT, SIZE as two LE uint32 -> COUNT messages of SIZE bytes),
//   Ping (bidi echo). Prints "listening on PORT"; runs until killed.
//   echo_server [--threads N]   (N completion-queue threads; default: gRPC's own choice)
#include "../../c/bench_payload.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

namespace {

std::string flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  (void)bb.Dump(&slices);
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

class Reactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit Reactor(grpc::GenericCallbackServerContext* ctx) {
    const std::string& m = ctx->method();
    mode_ = ends_with(m, "/Get") ? kGet : ends_with(m, "/Stream") ? kStream : ends_with(m, "/Ping") ? kPing : kNone;
    if (mode_ == kNone) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + m));
      return;
    }
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or the call ended)
      Finish(mode_ == kPing ? grpc::Status::OK
                            : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
      return;
    }
    switch (mode_) {
      case kGet:
        resp_ = req_;
        StartWriteAndFinish(&resp_, grpc::WriteOptions(), grpc::Status::OK);
        break;
      case kStream: {
        std::string r = flatten(req_);
        if (r.size() != 8) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "want COUNT and SIZE"));
          return;
        }
        uint32_t count, size;
        std::memcpy(&count, r.data(), 4);
        std::memcpy(&size, r.data() + 4, 4);
        remaining_ = count;
        std::string body(size, '\0');
        bench_fill_stream(&body[0], size);
        grpc::Slice slice(body);
        resp_ = grpc::ByteBuffer(&slice, 1);
        NextStreamWrite();
        break;
      }
      case kPing:
        resp_ = req_;
        StartWrite(&resp_);
        break;
      default:
        break;
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    if (mode_ == kStream) NextStreamWrite();
    else if (mode_ == kPing) StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  void NextStreamWrite() {
    if (remaining_ == 0) {
      Finish(grpc::Status::OK);
      return;
    }
    remaining_--;
    StartWrite(&resp_);
  }

  enum Mode { kNone, kGet, kStream, kPing } mode_;
  grpc::ByteBuffer req_, resp_;
  uint32_t remaining_ = 0;
};

class Service : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Reactor(ctx);
  }
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  const char *cert = nullptr, *key = nullptr;
  grpc::ServerBuilder builder;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--port") && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--tls-cert") && i + 1 < argc) cert = argv[++i];
    else if (!std::strcmp(argv[i], "--tls-key") && i + 1 < argc) key = argv[++i];
  }
  Service service;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (cert && key) {  // TLS, no client certificate asked for (as the swiftgrpc bench server)
    auto slurp = [](const char* path) {
      std::ifstream f(path, std::ios::binary);
      return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    };
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({slurp(key), slurp(cert)});
    creds = grpc::SslServerCredentials(opts);
  }
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), creds, &port);
  builder.RegisterCallbackGenericService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  if (bench_gzip()) builder.SetDefaultCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "could not start\n");
    return 1;
  }
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  server->Wait();
}
