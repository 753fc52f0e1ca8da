// PacketSocket: an AF_PACKET raw socket bound to one interface and one ethertype, for sending
// whole Ethernet frames and receiving them on the JS thread (RFC 5227 probes).
#pragma once
#include <napi.h>

namespace bw {

// Registers the PacketSocket class on the addon's exports.
void RegisterPacketSocket(Napi::Env env, Napi::Object exports);

}  // namespace bw
