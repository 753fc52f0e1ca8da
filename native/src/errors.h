// Throwing kernel errors to JavaScript: an Error whose message names the failed call and the
// errno, with `errno` (number) and `code` ("EPERM", ...) properties that TypeScript maps to
// BridgewardError codes.
#pragma once
#include <napi.h>

#include <string>

namespace bw {

// Throws `what: strerror(err)` (plus the last libbpf warnings, if any) as a JS Error.
void ThrowErrno(Napi::Env env, const std::string& what, int err);

// Installs a libbpf print hook that keeps warnings for the next error instead of printing them.
void CaptureLibbpfLog();

// Forgets captured libbpf warnings (call before each libbpf operation).
void ClearLibbpfLog();

}  // namespace bw
