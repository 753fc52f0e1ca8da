// uv_poll wrapper: see fd_watch.h.
#include "fd_watch.h"

namespace bw {

int FdWatch::Start(uv_loop_t* loop, int fd, std::function<void()> on_readable) {
  Stop();
  auto* h = new Handle{{}, std::move(on_readable)};
  int rc = uv_poll_init(loop, &h->poll, fd);
  if (rc != 0) {
    delete h;
    return rc;
  }
  h->poll.data = h;
  rc = uv_poll_start(&h->poll, UV_READABLE, [](uv_poll_t* p, int status, int) {
    auto* self = static_cast<Handle*>(p->data);
    if (status == 0 && self->on_readable) self->on_readable();
  });
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
             [](uv_handle_t* p) { delete static_cast<Handle*>(p->data); });
    return rc;
  }
  handle_ = h;
  return 0;
}

void FdWatch::Stop() {
  if (handle_ == nullptr) return;
  uv_poll_stop(&handle_->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll),
           [](uv_handle_t* p) { delete static_cast<Handle*>(p->data); });
  handle_ = nullptr;
}

}  // namespace bw
