// BpfObject: one loaded eBPF object file (libbpf) with tc attach/detach, map dumps, pinning,
// BPF_PROG_TEST_RUN and run-time statistics. Raw bytes only; TypeScript parses records.
#pragma once
#include <napi.h>

namespace bw {

// Registers the BpfObject class on the addon's exports.
void RegisterBpfObject(Napi::Env env, Napi::Object exports);

}  // namespace bw
