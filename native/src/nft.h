// libnftables binding: one nft context per process, commands run from a buffer.
#pragma once
#include <napi.h>

namespace bw {

// Registers nftRun on the addon's exports.
void RegisterNft(Napi::Env env, Napi::Object exports);

}  // namespace bw
