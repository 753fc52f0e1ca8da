// new PacketSocket(ifindex, ethertype, onFrames(frames: Buffer[]), listening = true): receives
// every frame of that ethertype arriving on the interface (not the ones it sends itself) while
// listening; send(frame) transmits a complete Ethernet frame. listen(on) switches receiving on
// and off with a socket filter (a kept socket costs nothing while off; opening and closing one
// waits for an RCU grace period, milliseconds); listen(program) receives only the frames a
// classic BPF program (built by the caller) accepts. close() stops it; until then it keeps the
// event loop alive.
#include "packet_socket.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "errors.h"
#include "fd_watch.h"
#include "js_callback.h"

namespace bw {
namespace {

// Frames read per readable event, at most: bounds the work per event-loop turn.
constexpr int kMaxBatch = 256;
constexpr size_t kMaxFrame = 2048;

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PacketSocket",
                       {
                           InstanceMethod("send", &PacketSocket::Send),
                           InstanceMethod("listen", &PacketSocket::Listen),
                           InstanceMethod("close", &PacketSocket::Close),
                       });
  }

  explicit PacketSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction()) {
      Napi::TypeError::New(env,
                           "new PacketSocket(ifindex: number, ethertype: number, onFrames: function)")
          .ThrowAsJavaScriptException();
      return;
    }
    int ifindex = info[0].As<Napi::Number>().Int32Value();
    uint16_t proto = htons(static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()));
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0) {
      ThrowErrno(env, "socket(AF_PACKET)", errno);
      return;
    }
    sockaddr_ll addr = {};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = proto;
    addr.sll_ifindex = ifindex;
    int one = 1;
    bool listening = info.Length() < 4 || info[3].ToBoolean().Value();
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0 ||
        (!listening && SetListening(fd, false) != 0) ||
        bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, "bind AF_PACKET ifindex " + std::to_string(ifindex), err);
      return;
    }
    callback_ = std::make_unique<JsCallback>(env, info[2].As<Napi::Function>(), "bridgeward:packet");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    int rc = watch_.Start(loop, fd, [this] { Drain(); });
    if (rc != 0) {
      close(fd);
      Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(rc))
          .ThrowAsJavaScriptException();
      return;
    }
    fd_ = fd;
  }

  ~PacketSocket() override { Stop(); }

 private:
  int fd_ = -1;
  FdWatch watch_;
  std::unique_ptr<JsCallback> callback_;

  void Drain() {
    std::vector<std::vector<uint8_t>> frames;
    uint8_t buf[kMaxFrame];
    for (int i = 0; i < kMaxBatch && fd_ >= 0; i++) {
      ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) break;  // EAGAIN: drained (other errors: retried on the next readable event)
      frames.emplace_back(buf, buf + n);
    }
    if (frames.empty()) return;
    callback_->Call([&frames](Napi::Env env) {
      Napi::Array arr = Napi::Array::New(env, frames.size());
      for (size_t i = 0; i < frames.size(); i++) {
        arr.Set(i, Napi::Buffer<uint8_t>::Copy(env, frames[i].data(), frames[i].size()));
      }
      return arr;
    });
  }

  // Off: a filter that takes no frame (attached before bind, nothing is ever queued). On: no
  // filter. Returns 0 or -1 with errno.
  static int SetListening(int fd, bool on) {
    if (on) {
      int unused = 0;  // the kernel wants an int-sized option value even here
      int rc = setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused);
      return rc != 0 && errno == ENOENT ? 0 : rc;
    }
    static sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    sock_fprog prog = {1, drop_all};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  }

  // listen(on: boolean | program: Buffer): receive every frame (true), none (false; frames
  // already queued are dropped), or those a classic BPF program accepts (struct sock_filter
  // records, 8 bytes each, at most BPF_MAXINSNS; the kernel checks the program).
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !(info[0].IsBoolean() || info[0].IsBuffer())) {
      Napi::TypeError::New(env, "listen(on: boolean | program: Buffer)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (fd_ < 0) {
      Napi::Error::New(env, "PacketSocket is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info[0].IsBuffer()) {
      auto code = info[0].As<Napi::Buffer<uint8_t>>();
      size_t n = code.Length() / sizeof(sock_filter);
      if (code.Length() % sizeof(sock_filter) != 0 || n == 0 || n > BPF_MAXINSNS) {
        Napi::RangeError::New(env, "listen(program): 1 to 4096 sock_filter records")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      std::vector<sock_filter> insns(n);
      memcpy(insns.data(), code.Data(), code.Length());
      sock_fprog prog = {static_cast<unsigned short>(n), insns.data()};
      if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
        ThrowErrno(env, "setsockopt SO_ATTACH_FILTER", errno);
      }
      return env.Undefined();
    }
    bool on = info[0].As<Napi::Boolean>().Value();
    if (SetListening(fd_, on) != 0) {
      ThrowErrno(env, "setsockopt SO_ATTACH_FILTER", errno);
      return env.Undefined();
    }
    if (!on) {
      uint8_t buf[kMaxFrame];
      while (recv(fd_, buf, sizeof buf, MSG_DONTWAIT) >= 0) {
      }
    }
    return env.Undefined();
  }

  void Stop() {
    watch_.Stop();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // send(frame: Buffer): transmits one complete Ethernet frame.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "send(frame: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (fd_ < 0) {
      Napi::Error::New(env, "PacketSocket is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto frame = info[0].As<Napi::Buffer<uint8_t>>();
    if (send(fd_, frame.Data(), frame.Length(), 0) < 0) ThrowErrno(env, "send AF_PACKET", errno);
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }
};

}  // namespace

void RegisterPacketSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketSocket", PacketSocket::Define(env));
}

}  // namespace bw
