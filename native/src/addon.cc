// bridgeward's N-API addon: syscalls only (libbpf, AF_PACKET, libnftables); all parsing and
// logic live in TypeScript. This file registers the exported functions.
#include <napi.h>
#include <bpf/libbpf.h>

#include "bpf_object.h"
#include "errors.h"
#include "nft.h"
#include "packet_socket.h"
#include "ringbuf_reader.h"

namespace {

// version() -> { addon, libbpf }: a cheap probe that the addon loaded and which libbpf it uses.
Napi::Value Version(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("addon", "0.1.0");
  out.Set("libbpf", std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version));
  bw::CaptureLibbpfLog();
  bw::RegisterNft(env, exports);
  bw::RegisterBpfObject(env, exports);
  bw::RegisterRingbufReader(env, exports);
  bw::RegisterPacketSocket(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(bridgeward_native, Init)
