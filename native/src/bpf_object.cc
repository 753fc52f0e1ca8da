// BpfObject (see bpf_object.h).
//
// new BpfObject(path, pinDir | null): opens and loads the object. With a pin dir, maps declared
// LIBBPF_PIN_BY_NAME are pinned there, and maps already pinned there are reused (so in-kernel
// state survives an agent restart); a pinned map whose type or sizes no longer match the object
// (an older layout) is unpinned and created afresh. With null nothing is pinned.
// tc filters use a fixed handle/priority, so attaching again replaces bridgeward's own filter
// (e.g. the previous agent's program) and detaching never touches anyone else's.
// TCX links (BPF_LINK_CREATE, kernel >= 6.6) are pinned at a path the caller chooses, so they
// outlive the process like the filters do; which pin belongs to which port is TypeScript's call.
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

// enum bpf_attach_type BPF_TCX_INGRESS (kernel >= 6.6); libbpf 1.1's uapi header predates it.
constexpr int kTcxIngress = 46;

// struct bpf_link_info as the kernel fills it for a TCX link: the tcx member of its union
// (ifindex, attach_type) sits at offset 16, where libbpf 1.1's uapi header has no name for it.
// The ifindex reads 0 once the device is gone (the link is then defunct).
struct TcxLinkInfo {
  __u32 type;
  __u32 id;
  __u32 prog_id;
  __u32 pad;
  __u32 ifindex;
  __u32 attach_type;
  __u64 reserved[8];
};

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod("tcAttach", &BpfObject::TcAttach),
                           InstanceMethod("tcDetach", &BpfObject::TcDetach),
                           InstanceMethod("tcQuery", &BpfObject::TcQuery),
                           InstanceMethod("tcxAttach", &BpfObject::TcxAttach),
                           InstanceMethod("linkInfo", &BpfObject::LinkInfo),
                           InstanceMethod("linkUpdate", &BpfObject::LinkUpdate),
                           InstanceMethod("linkUnpin", &BpfObject::LinkUnpin),
                           InstanceMethod("mapFd", &BpfObject::MapFd),
                           InstanceMethod("mapUpdate", &BpfObject::MapUpdate),
                           InstanceMethod("mapDelete", &BpfObject::MapDelete),
                           InstanceMethod("mapLookup", &BpfObject::MapLookup),
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

  static bool PinPath(const Napi::CallbackInfo& info, size_t i, std::string* out) {
    if (info.Length() <= i || !info[i].IsString()) {
      Napi::TypeError::New(info.Env(), "pin path must be a string").ThrowAsJavaScriptException();
      return false;
    }
    *out = info[i].As<Napi::String>().Utf8Value();
    return true;
  }

  // tcxAttach(prog, ifindex, pinPath) -> link id: a TCX ingress link (BPF_LINK_CREATE) pinned at
  // pinPath (which must not exist). EINVAL on kernels without TCX.
  Napi::Value TcxAttach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = Program(info);
    int ifindex;
    std::string pin;
    if (prog == nullptr || !Ifindex(info, 1, &ifindex) || !PinPath(info, 2, &pin)) {
      return env.Undefined();
    }
    int fd = bpf_link_create(bpf_program__fd(prog), ifindex,
                             static_cast<bpf_attach_type>(kTcxIngress), nullptr);
    if (fd < 0) {
      ThrowErrno(env, "BPF_LINK_CREATE tcx ingress ifindex " + std::to_string(ifindex), fd);
      return env.Undefined();
    }
    TcxLinkInfo li = {};
    __u32 len = sizeof li;
    int rc = bpf_obj_get_info_by_fd(fd, &li, &len);
    if (rc == 0) rc = bpf_obj_pin(fd, pin.c_str());
    close(fd);  // on failure this detaches the link again
    if (rc != 0) {
      ThrowErrno(env, "pinning the tcx link at " + pin, rc);
      return env.Undefined();
    }
    return Napi::Number::New(env, li.id);
  }

  // linkInfo(pinPath) -> { id, progId, ifindex, attachType, type } of the link pinned there, or
  // null when nothing is pinned there. ifindex is 0 once the link's device is gone.
  Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string pin;
    if (!PinPath(info, 0, &pin)) return env.Undefined();
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) return env.Null();
    if (fd < 0) {
      ThrowErrno(env, "bpf_obj_get " + pin, errno);
      return env.Undefined();
    }
    TcxLinkInfo li = {};
    __u32 len = sizeof li;
    int rc = bpf_obj_get_info_by_fd(fd, &li, &len);
    close(fd);
    if (rc != 0) {
      ThrowErrno(env, "bpf_obj_get_info_by_fd " + pin, rc);
      return env.Undefined();
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("id", Napi::Number::New(env, li.id));
    out.Set("progId", Napi::Number::New(env, li.prog_id));
    out.Set("type", Napi::Number::New(env, li.type));
    out.Set("ifindex", Napi::Number::New(env, li.ifindex));
    out.Set("attachType", Napi::Number::New(env, li.attach_type));
    return out;
  }

  // linkUpdate(pinPath, prog): the link pinned there runs `prog` from now on (BPF_LINK_UPDATE;
  // no packet goes unobserved in between).
  Napi::Value LinkUpdate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string pin;
    if (!PinPath(info, 0, &pin)) return env.Undefined();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsString()) {
      Napi::TypeError::New(env, "linkUpdate(pinPath: string, prog: string)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string name = info[1].As<Napi::String>().Utf8Value();
    bpf_program* prog = bpf_object__find_program_by_name(obj_, name.c_str());
    if (prog == nullptr) {
      Napi::Error::New(env, "no program " + name).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) {
      ThrowErrno(env, "bpf_obj_get " + pin, errno);
      return env.Undefined();
    }
    int rc = bpf_link_update(fd, bpf_program__fd(prog), nullptr);
    close(fd);
    if (rc != 0) ThrowErrno(env, "BPF_LINK_UPDATE " + pin, rc);
    return env.Undefined();
  }

  // linkUnpin(pinPath) -> true when a link was pinned there: detaches it (BPF_LINK_DETACH; a
  // defunct link has nothing to detach) and removes the pin.
  Napi::Value LinkUnpin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string pin;
    if (!PinPath(info, 0, &pin)) return env.Undefined();
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0 && errno == ENOENT) return Napi::Boolean::New(env, false);
    if (fd < 0) {
      ThrowErrno(env, "bpf_obj_get " + pin, errno);
      return env.Undefined();
    }
    int rc = bpf_link_detach(fd);
    close(fd);
    if (rc != 0 && rc != -ENOLINK && rc != -EINVAL) {
      ThrowErrno(env, "BPF_LINK_DETACH " + pin, rc);
      return env.Undefined();
    }
    if (unlink(pin.c_str()) != 0 && errno != ENOENT) {
      ThrowErrno(env, "unlink " + pin, errno);
      return env.Undefined();
    }
    return Napi::Boolean::New(env, true);
  }

  // The key (and value) buffers of a map call, checked against the map's sizes.
  bool KeyValue(const Napi::CallbackInfo& info, bpf_map* map, bool with_value) {
    size_t want = with_value ? 3 : 2;
    bool ok = info.Length() >= want && info[1].IsBuffer() &&
              info[1].As<Napi::Buffer<uint8_t>>().Length() == bpf_map__key_size(map) &&
              (!with_value || (info[2].IsBuffer() && info[2].As<Napi::Buffer<uint8_t>>().Length() ==
                                                         bpf_map__value_size(map)));
    if (!ok) {
      Napi::TypeError::New(info.Env(), "key/value buffers must match the map's sizes")
          .ThrowAsJavaScriptException();
    }
    return ok;
  }

  // mapUpdate(map, key, value): creates or replaces one entry (not for per-CPU maps).
  Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = Map(info);
    if (map == nullptr || !KeyValue(info, map, true)) return env.Undefined();
    int rc = bpf_map_update_elem(bpf_map__fd(map), info[1].As<Napi::Buffer<uint8_t>>().Data(),
                                 info[2].As<Napi::Buffer<uint8_t>>().Data(), BPF_ANY);
    if (rc != 0) ThrowErrno(env, std::string("bpf_map_update_elem ") + bpf_map__name(map), rc);
    return env.Undefined();
  }

  // mapDelete(map, key) -> true when the entry existed.
  Napi::Value MapDelete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = Map(info);
    if (map == nullptr || !KeyValue(info, map, false)) return env.Undefined();
    int rc = bpf_map_delete_elem(bpf_map__fd(map), info[1].As<Napi::Buffer<uint8_t>>().Data());
    if (rc == -ENOENT) return Napi::Boolean::New(env, false);
    if (rc != 0) {
      ThrowErrno(env, std::string("bpf_map_delete_elem ") + bpf_map__name(map), rc);
      return env.Undefined();
    }
    return Napi::Boolean::New(env, true);
  }

  // mapLookup(map, key) -> value Buffer, or null when there is no such entry (not for per-CPU
  // maps).
  Napi::Value MapLookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = Map(info);
    if (map == nullptr || !KeyValue(info, map, false)) return env.Undefined();
    std::vector<uint8_t> value(bpf_map__value_size(map));
    int rc = bpf_map_lookup_elem(bpf_map__fd(map), info[1].As<Napi::Buffer<uint8_t>>().Data(),
                                 value.data());
    if (rc == -ENOENT) return env.Null();
    if (rc != 0) {
      ThrowErrno(env, std::string("bpf_map_lookup_elem ") + bpf_map__name(map), rc);
      return env.Undefined();
    }
    return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
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

  // testRun(prog, frame, ifindex[, repeat]) -> { retval, durationNs }: BPF_PROG_TEST_RUN on one
  // frame (ifindex 0 = loopback; otherwise a device of this network namespace), `repeat` times
  // (default 1); durationNs is the kernel's mean per run.
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
                .ctx_size_in = sizeof ctx,
                .repeat = static_cast<int>(
                    info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 1));
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
