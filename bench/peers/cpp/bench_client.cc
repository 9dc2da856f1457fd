// The C++ gRPC (Debian libgrpc++ 1.51) reference client of the benchmark suite, generic stub
// and callback API, with the modes and output of bench/c/bench_client.c:
//   bench_client TARGET unary N CONC SIZE | stream COUNT SIZE | ping N SIZE
// Prints one line: RESULT {json}. Every response is checked; mismatches count in "failed".
#include "../../c/bench_payload.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  (void)bb.Dump(&slices);
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::unique_ptr<grpc::GenericStub> stub;
const std::string kGet = "/swiftgrpc.examples.Echo/Get";

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  void signal() {
    std::lock_guard<std::mutex> l(mu);
    done = true;
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
  }
};

// One slot of the concurrent unary loop: each completion starts the slot's next call.
struct Unary {
  std::string req;
  grpc::ByteBuffer req_bb;
  long n, issued = 0, done_calls = 0;
  std::atomic<long> failed{0};
  std::mutex mu;
  Waiter all_done;
  std::vector<double> lat;

  void start() {
    auto* ctx = new grpc::ClientContext();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto* resp = new grpc::ByteBuffer();
    auto t0 = Clock::now();
    stub->UnaryCall(ctx, kGet, grpc::StubOptions(), &req_bb, resp, [this, ctx, resp, t0](grpc::Status s) {
      double l = secs_since(t0);
      if (!s.ok() || flatten(*resp) != req) failed++;
      delete ctx;
      delete resp;
      bool again = false, finished = false;
      {
        std::lock_guard<std::mutex> g(mu);
        lat.push_back(l);
        done_calls++;
        if (issued < n) { issued++; again = true; }
        finished = done_calls == n;
      }
      if (again) start();
      if (finished) all_done.signal();
    });
  }
};

int unary(long n, long conc, size_t size) {
  Unary u;
  u.req.resize(size);
  bench_fill_request(&u.req[0], size);
  grpc::Slice slice(u.req);
  u.req_bb = grpc::ByteBuffer(&slice, 1);
  {  // warm-up: connect
    Unary w;
    w.req = u.req;
    w.req_bb = u.req_bb;
    w.n = 1;
    w.issued = 1;
    w.start();
    w.all_done.wait();
  }
  u.n = n;
  u.lat.reserve(n);
  auto t0 = Clock::now();
  long first = std::min(conc, n);
  u.issued = first;
  for (long i = 0; i < first; i++) u.start();
  u.all_done.wait();
  double secs = secs_since(t0);
  if (conc == 1) {
    std::sort(u.lat.begin(), u.lat.end());
    std::printf("RESULT {\"mode\":\"unary\",\"calls\":%ld,\"concurrency\":1,\"size\":%zu,\"calls_per_s\":%.0f,"
                "\"p50_us\":%.1f,\"p99_us\":%.1f,\"failed\":%ld}\n",
                n, size, n / secs, u.lat[n / 2] * 1e6, u.lat[static_cast<long>(n * 0.99)] * 1e6, u.failed.load());
  } else {
    std::printf("RESULT {\"mode\":\"unary\",\"calls\":%ld,\"concurrency\":%ld,\"size\":%zu,\"calls_per_s\":%.0f,"
                "\"failed\":%ld}\n", n, conc, size, n / secs, u.failed.load());
  }
  return u.failed != 0;
}

class StreamReader : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReader(uint32_t count, uint32_t size) : size_(size) {
    char req[8];
    std::memcpy(req, &count, 4);
    std::memcpy(req + 4, &size, 4);
    grpc::Slice slice(req, 8);
    req_ = grpc::ByteBuffer(&slice, 1);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stub->PrepareBidiStreamingCall(&ctx_, "/swiftgrpc.examples.Echo/Stream", grpc::StubOptions(), this);
    StartWriteLast(&req_, grpc::WriteOptions());
    StartRead(&resp_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    got++;
    if (resp_.Length() != size_) failed++;
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status& s) override {
    status = s;
    waiter.signal();
  }
  grpc::ClientContext ctx_;
  grpc::ByteBuffer req_, resp_;
  uint32_t size_;
  long got = 0, failed = 0;
  grpc::Status status;
  Waiter waiter;
};

int stream(long count, size_t size) {
  auto t0 = Clock::now();
  StreamReader r(static_cast<uint32_t>(count), static_cast<uint32_t>(size));
  r.waiter.wait();
  double secs = secs_since(t0);
  long failed = r.failed + (r.status.ok() ? 0 : 1) + (count - r.got);
  std::printf("RESULT {\"mode\":\"stream\",\"messages\":%ld,\"size\":%zu,\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,"
              "\"failed\":%ld}\n", r.got, size, r.got / secs, r.got * static_cast<double>(size) / secs / 1e6, failed);
  return failed != 0;
}

class Pinger : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Pinger(long n, size_t size) : n_(n) {
    req_s_.resize(size);
    bench_fill_request(&req_s_[0], size);
    grpc::Slice slice(req_s_);
    req_ = grpc::ByteBuffer(&slice, 1);
    lat.reserve(n);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stub->PrepareBidiStreamingCall(&ctx_, "/swiftgrpc.examples.Echo/Ping", grpc::StubOptions(), this);
    StartCall();
    Next();
  }
  void Next() {
    t0_ = Clock::now();
    pending_ = 2;
    StartWrite(&req_);
    StartRead(&resp_);
  }
  // A round trip ends when both its write and its read are done (one of each in flight).
  void Step() {
    if (--pending_ > 0) return;
    if (i_ >= 0) lat.push_back(secs_since(t0_));  // i_ -1 warms up
    if (++i_ < n_) Next();
    else StartWritesDone();
  }
  void OnWriteDone(bool ok) override {
    if (ok) Step();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (flatten(resp_) != req_s_) failed++;
    Step();
  }
  void OnDone(const grpc::Status& s) override {
    status = s;
    waiter.signal();
  }
  grpc::ClientContext ctx_;
  std::string req_s_;
  grpc::ByteBuffer req_, resp_;
  long n_, i_ = -1, failed = 0;
  std::atomic<int> pending_{0};
  Clock::time_point t0_;
  std::vector<double> lat;
  grpc::Status status;
  Waiter waiter;
};

int ping(long n, size_t size) {
  Pinger p(n, size);
  p.waiter.wait();
  long failed = p.failed + (p.status.ok() ? 0 : 1) + (n - static_cast<long>(p.lat.size()));
  std::sort(p.lat.begin(), p.lat.end());
  double p50 = p.lat.empty() ? 0 : p.lat[p.lat.size() / 2] * 1e6;
  double p99 = p.lat.empty() ? 0 : p.lat[static_cast<size_t>(p.lat.size() * 0.99)] * 1e6;
  std::printf("RESULT {\"mode\":\"ping\",\"round_trips\":%ld,\"size\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
              "\"failed\":%ld}\n", n, size, p50, p99, failed);
  return failed != 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: bench_client TARGET unary N CONC SIZE | stream COUNT SIZE | ping N SIZE\n");
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  if (bench_gzip()) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  auto channel = grpc::CreateCustomChannel(argv[1], grpc::InsecureChannelCredentials(), args);
  stub = std::make_unique<grpc::GenericStub>(channel);
  std::string mode = argv[2];
  int rc;
  if (mode == "unary" && argc >= 6) rc = unary(std::atol(argv[3]), std::atol(argv[4]), std::atol(argv[5]));
  else if (mode == "stream") rc = stream(std::atol(argv[3]), std::atol(argv[4]));
  else if (mode == "ping") rc = ping(std::atol(argv[3]), std::atol(argv[4]));
  else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  std::fflush(stdout);
  stub.reset();
  return rc;
}
