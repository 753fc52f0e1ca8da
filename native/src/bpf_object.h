// BpfObject: one loaded eBPF object file (libbpf) with tc (clsact) and TCX attachment, map
// dumps and updates, pinning, BPF_PROG_TEST_RUN and run-time statistics. Raw bytes only; TypeScript parses records.
#pragma once
#include <napi.h>

namespace bw {

// Registers the BpfObject class on the addon's exports.
void RegisterBpfObject(Napi::Env env, Napi::Object exports);

}  // namespace bw
