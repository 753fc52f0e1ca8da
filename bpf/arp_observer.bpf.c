// SPDX-License-Identifier: GPL-2.0
// tc ingress program for every rt0 port: observes ARP. (Skeleton; the observer fills it.)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int arp_observer(struct __sk_buff *skb)
{
	(void)skb;
	return 0; /* TC_ACT_OK: never interferes with traffic */
}

char LICENSE[] SEC("license") = "GPL";
