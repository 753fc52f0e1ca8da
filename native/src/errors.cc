// Kernel errors as JS Errors with errno/code, and libbpf's warnings captured for them.
#include "errors.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace bw {
namespace {

constexpr size_t kMaxLog = 2048;
std::string g_libbpf_log;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level != LIBBPF_WARN || g_libbpf_log.size() >= kMaxLog) return 0;
  char line[512];
  int n = vsnprintf(line, sizeof line, fmt, args);
  if (n > 0) g_libbpf_log.append(line, std::min(static_cast<size_t>(n), sizeof line - 1));
  return 0;
}

}  // namespace

void CaptureLibbpfLog() { libbpf_set_print(LibbpfPrint); }

void ClearLibbpfLog() { g_libbpf_log.clear(); }

void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + strerror(err);
  if (!g_libbpf_log.empty()) {
    std::string log = g_libbpf_log;
    while (!log.empty() && log.back() == '\n') log.pop_back();
    msg += " (libbpf: " + log + ")";
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  e.ThrowAsJavaScriptException();
}

}  // namespace bw
