// Calling JS from a libuv callback (outside any JS frame): a handle scope, an async context so
// promises and microtasks run, and a thrown exception surfaces as an uncaught exception instead
// of being lost.
#pragma once
#include <napi.h>

#include <string>

namespace bw {

class JsCallback {
 public:
  JsCallback(Napi::Env env, Napi::Function fn, const char* resource)
      : fn_(Napi::Persistent(fn)), context_(env, resource) {}

  // Calls the function with one argument built inside a fresh handle scope by `make_arg`.
  template <typename MakeArg>
  void Call(MakeArg make_arg) {
    Napi::Env env = fn_.Env();
    Napi::HandleScope scope(env);
    Napi::Value arg = make_arg(env);
    fn_.MakeCallback(env.Global(), {arg}, context_);
    if (env.IsExceptionPending()) {
      napi_fatal_exception(env, env.GetAndClearPendingException().Value());
    }
  }

 private:
  Napi::FunctionReference fn_;
  Napi::AsyncContext context_;
};

}  // namespace bw
