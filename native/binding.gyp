{
  "targets": [
    {
      "target_name": "bridgeward_native",
      "sources": [
        "src/addon.cc",
        "src/bpf_object.cc",
        "src/errors.cc",
        "src/fd_watch.cc",
        "src/nft.cc",
        "src/packet_socket.cc",
        "src/ringbuf_reader.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "libraries": ["-lbpf", "-lnftables"]
    }
  ]
}
