// RingbufReader: delivers a BPF ring buffer's records to a JS callback, in batches, on the JS
// thread (the ring buffer's epoll fd is watched by the Node event loop).
#pragma once
#include <napi.h>

namespace bw {

// Registers the RingbufReader class on the addon's exports.
void RegisterRingbufReader(Napi::Env env, Napi::Object exports);

}  // namespace bw
