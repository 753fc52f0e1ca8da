// Calls a C++ function on the Node event loop whenever a file descriptor is readable
// (libuv uv_poll): ring buffers and packet sockets are read on the JS thread, without threads.
#pragma once
#include <uv.h>

#include <functional>

namespace bw {

class FdWatch {
 public:
  // Starts watching `fd` on `loop`; returns 0 or a negative libuv error.
  int Start(uv_loop_t* loop, int fd, std::function<void()> on_readable);
  // Stops watching; safe to call twice. The handle is freed once libuv has closed it.
  void Stop();
  ~FdWatch() { Stop(); }

 private:
  struct Handle {
    uv_poll_t poll;
    std::function<void()> on_readable;
  };
  Handle* handle_ = nullptr;
};

}  // namespace bw
