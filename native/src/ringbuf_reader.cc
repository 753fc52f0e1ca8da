// new RingbufReader(mapFd, onRecords(records: Buffer[])): starts reading at once (records
// already queued, e.g. while the agent was down, come first). drain() delivers what is queued
// right now, synchronously (before the event loop would). close() stops it; until then it keeps
// the event loop alive.
#include "ringbuf_reader.h"

#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "errors.h"
#include "fd_watch.h"
#include "js_callback.h"

namespace bw {
namespace {

// Records handed to JS per callback, at most: bounds the work per event-loop turn.
constexpr size_t kMaxBatch = 4096;

class RingbufReader : public Napi::ObjectWrap<RingbufReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingbufReader",
                       {
                           InstanceMethod("drain", &RingbufReader::DrainNow),
                           InstanceMethod("close", &RingbufReader::Close),
                       });
  }

  explicit RingbufReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingbufReader>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "new RingbufReader(mapFd: number, onRecords: function)")
          .ThrowAsJavaScriptException();
      return;
    }
    ClearLibbpfLog();
    rb_ = ring_buffer__new(info[0].As<Napi::Number>().Int32Value(), &RingbufReader::OnSample,
                           this, nullptr);
    if (rb_ == nullptr) {
      ThrowErrno(env, "ring_buffer__new", errno);
      return;
    }
    callback_ = std::make_unique<JsCallback>(env, info[1].As<Napi::Function>(), "bridgeward:ringbuf");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    int rc = watch_.Start(loop, ring_buffer__epoll_fd(rb_), [this] { Drain(); });
    if (rc != 0) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
      Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(rc))
          .ThrowAsJavaScriptException();
    }
  }

  ~RingbufReader() override { Stop(); }

 private:
  ring_buffer* rb_ = nullptr;
  FdWatch watch_;
  std::unique_ptr<JsCallback> callback_;
  std::vector<std::vector<uint8_t>> batch_;

  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingbufReader*>(ctx);
    auto* bytes = static_cast<uint8_t*>(data);
    self->batch_.emplace_back(bytes, bytes + size);
    // A positive return stops this consume round; the rest is read on the next turn.
    return self->batch_.size() >= kMaxBatch ? 1 : 0;
  }

  void Drain() {
    if (rb_ == nullptr) return;
    ring_buffer__consume(rb_);
    if (batch_.empty()) return;
    std::vector<std::vector<uint8_t>> records;
    records.swap(batch_);
    callback_->Call([&records](Napi::Env env) {
      Napi::Array arr = Napi::Array::New(env, records.size());
      for (size_t i = 0; i < records.size(); i++) {
        arr.Set(i, Napi::Buffer<uint8_t>::Copy(env, records[i].data(), records[i].size()));
      }
      return arr;
    });
  }

  void Stop() {
    watch_.Stop();
    if (rb_ != nullptr) ring_buffer__free(rb_);
    rb_ = nullptr;
  }

  Napi::Value DrainNow(const Napi::CallbackInfo& info) {
    Drain();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }
};

}  // namespace

void RegisterRingbufReader(Napi::Env env, Napi::Object exports) {
  exports.Set("RingbufReader", RingbufReader::Define(env));
}

}  // namespace bw
