// arp-storm: sends ARP requests out of one interface at a fixed rate, for the detect benchmark.
//
//   arp-storm IFNAME same|spoof PPS SECONDS SENDER_IP
//
// same:  every frame claims SENDER_IP from the interface's MAC (one binding, repeated), asking
//        for one of 50 targets in turn.
// spoof: every frame claims a new random sender IP with a new random (unicast, locally
//        administered) sender MAC; the Ethernet source stays the interface's MAC, so the bridge
//        learns one station and only ARP-level bindings are spoofed.
// Frames go out in batches (sendmmsg) paced by an absolute clock. At the end it prints one line:
// "<frames sent> <elapsed s> <process CPU s>" (the CPU time includes the softirq work done in
// this process's context: veth, bridge, tc programs, packet-socket taps).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 60
#define BATCH_MAX 64

static double now_s(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {  // xorshift64
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

// An ARP request (Ethernet-over-IPv4) from eth_src claiming sip with sha, asking for tip.
static void build(uint8_t *f, const uint8_t *eth_src, const uint8_t *sha, uint32_t sip,
                  uint32_t tip) {
  memset(f, 0, FRAME_LEN);
  memset(f, 0xff, 6);
  memcpy(f + 6, eth_src, 6);
  f[12] = 0x08, f[13] = 0x06;                  // ARP
  f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0;  // Ethernet, IPv4
  f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;     // sizes, request
  memcpy(f + 22, sha, 6);
  memcpy(f + 28, &sip, 4);
  memcpy(f + 38, &tip, 4);
}

int main(int argc, char **argv) {
  if (argc != 6 || (strcmp(argv[2], "same") != 0 && strcmp(argv[2], "spoof") != 0)) {
    fprintf(stderr, "usage: arp-storm IFNAME same|spoof PPS SECONDS SENDER_IP\n");
    return 2;
  }
  int spoof = strcmp(argv[2], "spoof") == 0;
  double pps = atof(argv[3]), secs = atof(argv[4]);
  struct in_addr sender;
  if (pps <= 0 || secs <= 0 || inet_pton(AF_INET, argv[5], &sender) != 1) {
    fprintf(stderr, "arp-storm: bad rate, duration or sender IP\n");
    return 2;
  }
  int s = socket(AF_PACKET, SOCK_RAW, 0);
  if (s < 0) {
    perror("arp-storm: socket");
    return 1;
  }
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", argv[1]);
  if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) {
    perror("arp-storm: SIOCGIFHWADDR");
    return 1;
  }
  uint8_t mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1])};
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("arp-storm: bind");
    return 1;
  }
  rng_state ^= (uint64_t)getpid() << 32 ^ (uint64_t)(now_s(CLOCK_REALTIME) * 1e6);

  // One batch per millisecond or so, at least one frame each.
  int batch = (int)(pps / 1000);
  batch = batch < 1 ? 1 : batch > BATCH_MAX ? BATCH_MAX : batch;
  double period = batch / pps;
  static uint8_t frames[BATCH_MAX][FRAME_LEN];
  struct iovec iov[BATCH_MAX];
  struct mmsghdr msgs[BATCH_MAX];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH_MAX; i++) {
    iov[i] = (struct iovec){.iov_base = frames[i], .iov_len = FRAME_LEN};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t base = ntohl(sender.s_addr) & 0xffffff00u;

  double cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
  double start = now_s(CLOCK_MONOTONIC);
  long long sent = 0;
  for (long long n = 0; now_s(CLOCK_MONOTONIC) - start < secs; n++) {
    for (int i = 0; i < batch; i++) {
      uint32_t tip = htonl(base | (uint32_t)(201 + (sent + i) % 50));
      if (spoof) {
        uint64_t r = rng();
        uint8_t sha[6] = {(uint8_t)((r & 0xfc) | 0x02), (uint8_t)(r >> 8), (uint8_t)(r >> 16),
                          (uint8_t)(r >> 24), (uint8_t)(r >> 32), (uint8_t)(r >> 40)};
        build(frames[i], mac, sha, (uint32_t)(rng() >> 16) | 1u, tip);
      } else {
        build(frames[i], mac, mac, sender.s_addr, tip);
      }
    }
    for (int done = 0; done < batch;) {
      int r = sendmmsg(s, msgs + done, batch - done, 0);
      if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
        perror("arp-storm: sendmmsg");
        return 1;
      }
      if (r > 0) done += r;
    }
    sent += batch;
    double at = start + (n + 1) * period;  // when the next batch is due
    struct timespec due = {.tv_sec = (time_t)at, .tv_nsec = (long)((at - (time_t)at) * 1e9)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
  }
  printf("%lld %.6f %.6f\n", sent, now_s(CLOCK_MONOTONIC) - start,
         now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
  return 0;
}
