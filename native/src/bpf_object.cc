// BpfObject (see bpf_object.h).
//
// new BpfObject(path, pinDir | null): opens and loads the object. With a pin dir, maps declared
// LIBBPF_PIN_BY_NAME are pinned there, and maps already pinned there are reused (so in-kernel
// state survives an agent restart); a pinned map whose type or sizes no longer match the object
// (an older layout) is unpinned and created afresh. With null nothing is pinned.
// tc filters use a fixed handle/priority, so attaching again replaces bridgeward's own filter
// (e.g. the previous agent's program) and detaching never touches anyone else's.
#include "bpf_object.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "errors.h"

namespace bw {
namespace {

constexpr __u32 kTcHandle = 0xbd;
constexpr __u32 kTcPriority = 0xbd;

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod("tcAttach", &BpfObject::TcAttach),
                           InstanceMethod("tcDetach", &BpfObject::TcDetach),
                           InstanceMethod("tcQuery", &BpfObject::TcQuery),
                           InstanceMethod("mapFd", &BpfObject::MapFd),
                           InstanceMethod("mapDump", &BpfObject::MapDump),
                           InstanceMethod("testRun", &BpfObject::TestRun),
                           InstanceMethod("progInfo", &BpfObject::ProgInfo),
                           InstanceMethod("close", &BpfObject::Close),
                       });
  }

  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !(info[1].IsString() || info[1].IsNull())) {
      Napi::TypeError::New(env, "new BpfObject(path: string, pinDir: string | null)")
          .ThrowAsJavaScriptException();
      return;
    }
    std::string path = info[0].As<Napi::String>().Utf8Value();
    std::string pin_dir = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    ClearLibbpfLog();
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir.empty() ? nullptr : pin_dir.c_str());
    bpf_object* obj = bpf_object__open_file(path.c_str(), &opts);
    if (obj == nullptr) {
      ThrowErrno(env, "bpf_object__open_file " + path, errno);
      return;
    }
    bpf_map* map;
    if (pin_dir.empty()) {
      bpf_object__for_each_map(map, obj) bpf_map__set_pin_path(map, nullptr);
    } else {
      bpf_object__for_each_map(map, obj) UnpinIfIncompatible(map);
    }
    int rc = bpf_object__load(obj);
    if (rc != 0) {
      bpf_object__close(obj);
      ThrowErrno(env, "bpf_object__load " + path, rc);
      return;
    }
    obj_ = obj;
  }

  ~BpfObject() override {
    if (obj_ != nullptr) bpf_object__close(obj_);
  }

 private:
  bpf_object* obj_ = nullptr;

  bool Open(Napi::Env env) {
    if (obj_ != nullptr) return true;
    Napi::Error::New(env, "BpfObject is closed").ThrowAsJavaScriptException();
    return false;
  }

  bpf_program* Program(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return nullptr;
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "program name must be a string").ThrowAsJavaScriptException();
      return nullptr;
    }
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_program* prog = bpf_object__find_program_by_name(obj_, name.c_str());
    if (prog == nullptr) Napi::Error::New(env, "no program " + name).ThrowAsJavaScriptException();
    return prog;
  }

  // Removes the pin of `map` when the pinned map cannot be reused for it (libbpf would refuse
  // to load the object): a different type, key, value or size than this object declares.
  static void UnpinIfIncompatible(bpf_map* map) {
    const char* path = bpf_map__pin_path(map);
    if (path == nullptr) return;
    int fd = bpf_obj_get(path);
    if (fd < 0) return;
    bpf_map_info info = {};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
        (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
         info.value_size != bpf_map__value_size(map) ||
         info.max_entries != bpf_map__max_entries(map))) {
      unlink(path);
    }
    close(fd);
  }

  bpf_map* Map(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return nullptr;
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "map name must be a string").ThrowAsJavaScriptException();
      return nullptr;
    }
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
    if (map == nullptr) Napi::Error::New(env, "no map " + name).ThrowAsJavaScriptException();
    return map;
  }

  static bool Ifindex(const Napi::CallbackInfo& info, size_t i, int* out) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().Int32Value() <= 0) {
      Napi::TypeError::New(info.Env(), "ifindex must be a positive integer")
          .ThrowAsJavaScriptException();
      return false;
    }
    *out = info[i].As<Napi::Number>().Int32Value();
    return true;
  }

  // tcAttach(prog, ifindex) -> prog id: clsact ingress, created when missing; replaces
  // bridgeward's previous filter on that port.
  Napi::Value TcAttach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = Program(info);
    int ifindex;
    if (prog == nullptr || !Ifindex(info, 1, &ifindex)) return env.Undefined();
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    int rc = bpf_tc_hook_create(&hook);
    if (rc != 0 && rc != -EEXIST) {
      ThrowErrno(env, "bpf_tc_hook_create ifindex " + std::to_string(ifindex), rc);
      return env.Undefined();
    }
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog), .flags = BPF_TC_F_REPLACE,
                .handle = kTcHandle, .priority = kTcPriority);
    rc = bpf_tc_attach(&hook, &opts);
    if (rc != 0) {
      ThrowErrno(env, "bpf_tc_attach ifindex " + std::to_string(ifindex), rc);
      return env.Undefined();
    }
    return Napi::Number::New(env, opts.prog_id);
  }

  // tcDetach(ifindex) -> true when bridgeward's filter was removed, false when there was none
  // (or the device is gone).
  Napi::Value TcDetach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int ifindex;
    if (!Ifindex(info, 0, &ifindex)) return env.Undefined();
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    int rc = bpf_tc_detach(&hook, &opts);
    if (rc == -ENOENT || rc == -ENODEV || rc == -EINVAL) return Napi::Boolean::New(env, false);
    if (rc != 0) {
      ThrowErrno(env, "bpf_tc_detach ifindex " + std::to_string(ifindex), rc);
      return env.Undefined();
    }
    return Napi::Boolean::New(env, true);
  }

  // tcQuery(ifindex) -> prog id of bridgeward's filter on that port, or null.
  Napi::Value TcQuery(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int ifindex;
    if (!Ifindex(info, 0, &ifindex)) return env.Undefined();
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    int rc = bpf_tc_query(&hook, &opts);
    if (rc == -ENOENT || rc == -ENODEV || rc == -EINVAL) return env.Null();
    if (rc != 0) {
      ThrowErrno(env, "bpf_tc_query ifindex " + std::to_string(ifindex), rc);
      return env.Undefined();
    }
    return Napi::Number::New(env, opts.prog_id);
  }

  // mapFd(map) -> fd (owned by this object; for RingbufReader).
  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    bpf_map* map = Map(info);
    if (map == nullptr) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), bpf_map__fd(map));
  }

  // mapDump(map) -> { keySize, valueSize, cpus, keys, values }: every entry, keys and values
  // concatenated in the same order. A per-CPU map has `cpus` values per key (one per possible
  // CPU, in CPU order, each valueSize bytes); other maps have cpus = 1. At most max_entries
  // entries (bounded under churn).
  Napi::Value MapDump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = Map(info);
    if (map == nullptr) return env.Undefined();
    int fd = bpf_map__fd(map);
    size_t ksz = bpf_map__key_size(map);
    size_t vsz = bpf_map__value_size(map);
    __u32 max = bpf_map__max_entries(map);
    bpf_map_type type = bpf_map__type(map);
    bool per_cpu = type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
                   type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
    int cpus = per_cpu ? libbpf_num_possible_cpus() : 1;
    if (cpus < 1) {
      ThrowErrno(env, "libbpf_num_possible_cpus", cpus);
      return env.Undefined();
    }
    // The kernel lays per-CPU copies out 8-byte aligned.
    size_t stride = per_cpu ? (vsz + 7) / 8 * 8 : vsz;
    std::vector<uint8_t> keys, values, key(ksz), next(ksz), value(stride * cpus);
    void* prev = nullptr;
    for (__u32 i = 0; i < max; i++) {
      int rc = bpf_map_get_next_key(fd, prev, next.data());
      if (rc == -ENOENT) break;
      if (rc != 0) {
        ThrowErrno(env, "bpf_map_get_next_key", rc);
        return env.Undefined();
      }
      key.swap(next);
      prev = key.data();
      rc = bpf_map_lookup_elem(fd, key.data(), value.data());
      if (rc == -ENOENT) continue;  // deleted (LRU eviction) between the two calls
      if (rc != 0) {
        ThrowErrno(env, "bpf_map_lookup_elem", rc);
        return env.Undefined();
      }
      keys.insert(keys.end(), key.begin(), key.end());
      for (int c = 0; c < cpus; c++) {
        auto first = value.begin() + c * stride;
        values.insert(values.end(), first, first + vsz);
      }
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("keySize", Napi::Number::New(env, ksz));
    out.Set("valueSize", Napi::Number::New(env, vsz));
    out.Set("cpus", Napi::Number::New(env, cpus));
    out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size()));
    out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), values.size()));
    return out;
  }

  // testRun(prog, frame, ifindex) -> { retval, durationNs }: BPF_PROG_TEST_RUN on one frame
  // (ifindex 0 = loopback; otherwise a device of this network namespace).
  Napi::Value TestRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = Program(info);
    if (prog == nullptr) return env.Undefined();
    if (info.Length() < 3 || !info[1].IsBuffer() || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "testRun(prog: string, frame: Buffer, ifindex: number)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto frame = info[1].As<Napi::Buffer<uint8_t>>();
    __sk_buff ctx = {};
    ctx.ifindex = info[2].As<Napi::Number>().Uint32Value();
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.Data(),
                .data_size_in = static_cast<__u32>(frame.Length()), .ctx_in = &ctx,
                .ctx_size_in = sizeof ctx, .repeat = 1);
    int rc = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
    if (rc != 0) {
      ThrowErrno(env, "BPF_PROG_TEST_RUN", rc);
      return env.Undefined();
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("retval", Napi::Number::New(env, static_cast<int32_t>(opts.retval)));
    out.Set("durationNs", Napi::Number::New(env, opts.duration));
    return out;
  }

  // progInfo(prog) -> { id, runTimeNs, runCnt } (run time needs kernel.bpf_stats_enabled=1).
  Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = Program(info);
    if (prog == nullptr) return env.Undefined();
    bpf_prog_info pi = {};
    __u32 len = sizeof pi;
    int rc = bpf_obj_get_info_by_fd(bpf_program__fd(prog), &pi, &len);
    if (rc != 0) {
      ThrowErrno(env, "bpf_obj_get_info_by_fd", rc);
      return env.Undefined();
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("id", Napi::Number::New(env, pi.id));
    out.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
    out.Set("runCnt", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
    return out;
  }

  // close(): frees the object's fds. Attached tc filters and pinned maps stay in the kernel.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (obj_ != nullptr) bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }
};

}  // namespace

void RegisterBpfObject(Napi::Env env, Napi::Object exports) {
  exports.Set("BpfObject", BpfObject::Define(env));
}

}  // namespace bw
