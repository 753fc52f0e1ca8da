// nftRun(cmd, json) -> { rc, output, error }: runs one libnftables buffer (one kernel
// transaction) in the calling process's network namespace. One context is reused per process;
// output and errors are buffered and returned as strings, never printed.
#include "nft.h"

#include <nftables/libnftables.h>

#include <string>

namespace bw {
namespace {

nft_ctx* g_ctx = nullptr;

nft_ctx* Context() {
  if (g_ctx != nullptr) return g_ctx;
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) return nullptr;
  if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
    nft_ctx_free(ctx);
    return nullptr;
  }
  g_ctx = ctx;
  return g_ctx;
}

Napi::Value NftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "nftRun(cmd: string, json: boolean)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  nft_ctx* ctx = Context();
  if (ctx == nullptr) {
    Napi::Error::New(env, "nft_ctx_new failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string cmd = info[0].As<Napi::String>().Utf8Value();
  nft_ctx_output_set_flags(ctx, info[1].As<Napi::Boolean>().Value() ? NFT_CTX_OUTPUT_JSON : 0);
  int rc = nft_run_cmd_from_buffer(ctx, cmd.c_str());
  // Reading a buffer rewinds it for the next command.
  const char* out = nft_ctx_get_output_buffer(ctx);
  const char* err = nft_ctx_get_error_buffer(ctx);
  Napi::Object result = Napi::Object::New(env);
  result.Set("rc", rc);
  result.Set("output", out != nullptr ? out : "");
  result.Set("error", err != nullptr ? err : "");
  return result;
}

}  // namespace

void RegisterNft(Napi::Env env, Napi::Object exports) {
  exports.Set("nftRun", Napi::Function::New(env, NftRun, "nftRun"));
}

}  // namespace bw
