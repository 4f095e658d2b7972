// SPDX-License-Identifier: MIT OR GPL-2.0
//
// tern's in-kernel fast path for TURN ChannelData over UDP/IPv4 (RFC 8656 §12), attached at TC
// ingress, and at XDP (driver mode) on the interfaces whose driver can transmit XDP frames.
// src/fastpath/mod.rs installs the routes and explains the design; docs/fast-path.md is the
// operator's version.
//
// Both programs share the maps. XDP runs first and relays only what it can send at once
// (a known neighbour, out of the interface the packet came in on or of another interface with
// XDP); everything else it passes on unchanged (XDP_PASS) to the TC program, which handles the
// rest as before.
//
// client -> peer: a ChannelData datagram client:port -> listener:port whose channel is bound
//   (map `to_peer`) leaves as a plain UDP datagram relay:port -> peer:port carrying the payload.
// peer -> client: a datagram peer:port -> relay:port (map `to_client`) leaves as ChannelData
//   listener:port -> client:port.
// Anything else, an expired route, a route without a counts entry, a packet the kernel would
// have to fragment or cannot route: TC_ACT_UNSPEC, untouched (user space handles it).
//
// Checksums are updated incrementally (the UDP checksum from its old value and the difference
// of the fields that changed) and every byte change goes through a helper that keeps
// skb->csum right, so CHECKSUM_NONE, _UNNECESSARY and _COMPLETE skbs stay consistent. A UDP
// checksum of 0 (none) stays 0.
//
// CHECKSUM_PARTIAL caveat: a locally generated skb (from a socket on this host, seen on lo or
// on a veth whose other end is in a local namespace) carries only the pseudo-header sum in the
// checksum field and csum_start pointing at the UDP header; the device completes the checksum
// on the way out. A program cannot tell such an skb from one with a full checksum, and
// bpf_skb_adjust_room(BPF_ADJ_ROOM_NET) moves the UDP header 4 bytes away from csum_start, so a
// real NIC would checksum the wrong bytes, and a receiving kernel that finds csum_start before
// the UDP header verifies the (pseudo-only) field and drops the datagram. Hence: packets that
// arrived on lo are rewritten only when they are delivered locally, and then with a UDP
// checksum of 0 (none: they never crossed a wire); those that would leave the host pass
// untouched. A PARTIAL skb arriving on a veth from a local namespace is not relayed correctly
// (see docs/fast-path.md).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif

#define LOOPBACK_IFINDEX 1
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define FLAG_DONT_FRAGMENT 1
#define CHANNELDATA_HLEN 4
#define NEW_TTL 64

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define L4_OFF (IP_OFF + sizeof(struct iphdr))

// Addresses and ports in network byte order, the channel number too (as on the wire).
struct peer_key {
	__u32 client_ip;
	__u32 server_ip;
	__u16 client_port;
	__u16 server_port;
	__u16 channel;
	__u16 pad;
};

struct peer_value {
	__u32 relay_ip;
	__u32 peer_ip;
	__u16 relay_port;
	__u16 peer_port;
	__u32 pad0;
	__u64 until_ns;
	__u64 id;
	__u32 flags;
	__u32 pad1;
};

struct client_key {
	__u32 peer_ip;
	__u32 relay_ip;
	__u16 peer_port;
	__u16 relay_port;
};

struct client_value {
	__u32 server_ip;
	__u32 client_ip;
	__u16 server_port;
	__u16 client_port;
	__u16 channel;
	__u16 pad0;
	__u64 until_ns;
	__u64 id;
};

struct counts {
	__u64 to_peer_packets;
	__u64 to_peer_bytes;
	__u64 to_client_packets;
	__u64 to_client_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct peer_key);
	__type(value, struct peer_value);
} to_peer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct client_key);
	__type(value, struct client_value);
} to_client SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct counts);
} counts SEC(".maps");

// The interfaces (ifindex -> ifindex) XDP may redirect to: those where user space attached the
// XDP program because the driver can transmit XDP frames.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} xdp_out SEC(".maps");

// Datagrams relayed at XDP (index 0), to tell them from the TC program's share.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} xdp_stats SEC(".maps");

// The rewrite of one datagram: new addresses and ports, and where it goes.
struct plan {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u16 frag_off;
	__u16 tot_len; // new IP total length, host order
	__u32 ifindex;
	int verdict; // how the packet leaves after the rewrite
	__u8 smac[ETH_ALEN];
	__u8 dmac[ETH_ALEN];
	__u32 nexthop;
};

enum leave { LEAVE_LOCAL_OK, LEAVE_REDIRECT, LEAVE_NEIGH };

static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

// A UDP socket of this host receives what is sent to p's destination.
static __always_inline int local_socket(struct __sk_buff *skb, const struct plan *p)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	t.ipv4.saddr = p->saddr;
	t.ipv4.daddr = p->daddr;
	t.ipv4.sport = p->sport;
	t.ipv4.dport = p->dport;
	sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}

// The route lookup for the rewritten datagram of `p`, arrived on `ifindex`.
static __always_inline void fib_query(struct bpf_fib_lookup *fib, const struct plan *p, __u32 ifindex)
{
	fib->family = AF_INET;
	fib->l4_protocol = IPPROTO_UDP;
	fib->sport = p->sport;
	fib->dport = p->dport;
	fib->tot_len = p->tot_len;
	fib->ipv4_src = p->saddr;
	fib->ipv4_dst = p->daddr;
	fib->ifindex = ifindex;
}

// Where the rewritten packet goes; false: leave it to user space. Decided before anything is
// modified.
static __always_inline int route(struct __sk_buff *skb, struct plan *p)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	fib_query(&fib, p, skb->ingress_ifindex);
	// The helper answers BPF_FIB_LKUP_RET_FWD_DISABLED (then user space relays) unless
	// net.ipv4.conf.<ingress>.forwarding is 1, even for an output lookup; FastPath::load checks.
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED) {
		// A local destination from another interface would have to go through lo, where
		// the kernel drops a redirected packet with a local source (IP_LOCAL_SOURCE) unless
		// net.ipv4.conf.lo.accept_local is 1: user space relays it.
		if (skb->ingress_ifindex != LOOPBACK_IFINDEX)
			return 0;
		// NOT_FWDED also answers a lookup that found no route: an output lookup is bound to
		// the interface it names (lo here), so a remote destination behind eth0 is "not
		// forwarded" too. A packet on lo keeps the local route it was sent with, so it would
		// be delivered here whatever its new destination: only a socket of this host
		// listening on the new address and port proves the delivery is local.
		if (!local_socket(skb, p))
			return 0;
		p->verdict = LEAVE_LOCAL_OK;
		return 1;
	}
	// From lo, only local delivery: see the CHECKSUM_PARTIAL caveat at the top.
	if (skb->ingress_ifindex == LOOPBACK_IFINDEX)
		return 0;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		// The helper checked the MTU against the packet as it is now, not as it will be.
		if (p->tot_len > fib.mtu_result)
			return 0;
		__builtin_memcpy(p->smac, fib.smac, ETH_ALEN);
		__builtin_memcpy(p->dmac, fib.dmac, ETH_ALEN);
		p->ifindex = fib.ifindex;
		p->verdict = LEAVE_REDIRECT;
		return 1;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		p->ifindex = fib.ifindex;
		p->nexthop = fib.ipv4_dst;
		p->verdict = LEAVE_NEIGH;
		return 1;
	}
	return 0;
}

// Rewrites the IP header fields (each with the IP checksum, which keeps skb->csum right).
static __always_inline int rewrite_ip(struct __sk_buff *skb, const struct iphdr *old, const struct plan *p)
{
	__u16 old_len = old->tot_len, new_len = bpf_htons(p->tot_len);
	__u16 old_frag = old->frag_off, new_frag = p->frag_off;
	__u16 old_ttl, new_ttl;
	__u8 ttl = NEW_TTL;
	__u32 old_saddr = old->saddr, old_daddr = old->daddr;

	__builtin_memcpy(&old_ttl, &old->ttl, 2);
	new_ttl = old_ttl;
	((__u8 *)&new_ttl)[0] = ttl;

	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_saddr, p->saddr, 4) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_daddr, p->daddr, 4) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_len, new_len, 2) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_frag, new_frag, 2) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ttl, new_ttl, 2))
		return -1;
	if (bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, saddr), &p->saddr, 4, 0) ||
	    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, daddr), &p->daddr, 4, 0) ||
	    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, tot_len), &new_len, 2, 0) ||
	    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, frag_off), &new_frag, 2, 0) ||
	    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, ttl), &ttl, 1, 0))
		return -1;
	return 0;
}

// How the rewritten packet leaves.
static __always_inline int leave(struct __sk_buff *skb, const struct plan *p)
{
	struct bpf_redir_neigh nh = {};

	switch (p->verdict) {
	case LEAVE_LOCAL_OK:
		return TC_ACT_OK;
	case LEAVE_REDIRECT:
		if (bpf_skb_store_bytes(skb, 0, p->dmac, ETH_ALEN, 0) ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, p->smac, ETH_ALEN, 0))
			return TC_ACT_SHOT;
		return bpf_redirect(p->ifindex, 0);
	default:
		nh.nh_family = AF_INET;
		nh.ipv4_nh = p->nexthop;
		return bpf_redirect_neigh(p->ifindex, &nh, sizeof(nh), 0);
	}
}

// A 16-bit field as the low half of a 32-bit word, for bpf_csum_diff.
static __always_inline __u32 word16(__u16 v)
{
	__u32 w = 0;
	__builtin_memcpy((__u8 *)&w + 2, &v, 2);
	return w;
}

// The route of a ChannelData datagram client -> listener: fills the plan's addresses, its
// payload length and the old ChannelData header, and returns the route's counts; NULL when the
// datagram is not one the kernel relays.
static __always_inline struct counts *find_to_peer(const struct iphdr *ip, const struct udphdr *udp,
						   void *data_end, __u16 payload, struct plan *p,
						   __u32 *old_cd)
{
	const __u8 *cd = (const __u8 *)(udp + 1);
	struct peer_key key = {};
	struct peer_value *v;
	struct counts *c;

	if ((void *)(cd + CHANNELDATA_HLEN) > data_end)
		return NULL;
	if ((cd[0] & 0xC0) != 0x40)
		return NULL;
	// Only an exact length: padding (allowed over UDP) or a short datagram is user space's.
	if (((__u16)cd[2] << 8 | cd[3]) != payload - CHANNELDATA_HLEN)
		return NULL;

	key.client_ip = ip->saddr;
	key.server_ip = ip->daddr;
	key.client_port = udp->source;
	key.server_port = udp->dest;
	__builtin_memcpy(&key.channel, cd, 2);
	v = bpf_map_lookup_elem(&to_peer, &key);
	if (!v || bpf_ktime_get_ns() >= v->until_ns)
		return NULL;
	c = bpf_map_lookup_elem(&counts, &v->id);
	if (!c)
		return NULL;

	p->saddr = v->relay_ip;
	p->daddr = v->peer_ip;
	p->sport = v->relay_port;
	p->dport = v->peer_port;
	p->frag_off = (v->flags & FLAG_DONT_FRAGMENT) ? bpf_htons(IP_DF) : 0;
	p->tot_len = sizeof(struct iphdr) + sizeof(struct udphdr) + payload - CHANNELDATA_HLEN;
	__builtin_memcpy(old_cd, cd, 4);
	return c;
}

// The route of a datagram peer -> relay: fills the plan's addresses and the new ChannelData
// header, and returns the route's counts; NULL when the datagram is not one the kernel relays.
static __always_inline struct counts *find_to_client(const struct iphdr *ip, const struct udphdr *udp,
						     __u16 payload, struct plan *p, __u32 *new_cd)
{
	struct client_key key = {};
	struct client_value *v;
	struct counts *c;
	__u16 cd_len = bpf_htons(payload);

	key.peer_ip = ip->saddr;
	key.relay_ip = ip->daddr;
	key.peer_port = udp->source;
	key.relay_port = udp->dest;
	v = bpf_map_lookup_elem(&to_client, &key);
	if (!v || bpf_ktime_get_ns() >= v->until_ns)
		return NULL;
	c = bpf_map_lookup_elem(&counts, &v->id);
	if (!c)
		return NULL;
	if (payload > 0xffff - sizeof(struct iphdr) - sizeof(struct udphdr) - CHANNELDATA_HLEN)
		return NULL;

	p->saddr = v->server_ip;
	p->daddr = v->client_ip;
	p->sport = v->server_port;
	p->dport = v->client_port;
	p->frag_off = ip->frag_off & bpf_htons(IP_DF);
	p->tot_len = sizeof(struct iphdr) + sizeof(struct udphdr) + CHANNELDATA_HLEN + payload;
	__builtin_memcpy(new_cd, &v->channel, 2);
	__builtin_memcpy((__u8 *)new_cd + 2, &cd_len, 2);
	return c;
}

// The UDP checksum after the rewrite, updated from the old one with everything it covers that
// changes: the pseudo-header, the UDP header (with the checksum itself as 0) and the 4 bytes of
// ChannelData header that go (`old_cd`, `new_cd` 0) or come (`old_cd` 0, `new_cd`). A checksum
// of 0 (none) stays 0; -1 when the helper fails.
static __always_inline int new_udp_check(const struct iphdr *ip, const struct udphdr *udp,
					 __u32 old_cd, __u32 new_cd, const struct plan *p)
{
	__u16 old_ulen = udp->len, new_ulen = bpf_htons(p->tot_len - sizeof(struct iphdr));
	__u32 old_ports, new_ports;
	__u16 check;

	if (!udp->check)
		return 0;
	__builtin_memcpy(&old_ports, &udp->source, 4);
	__builtin_memcpy(&new_ports, &p->sport, 4);
	__u32 from[6] = {ip->saddr, ip->daddr, word16(old_ulen), old_ports, word16(old_ulen), old_cd};
	__u32 to[6] = {p->saddr, p->daddr, word16(new_ulen), new_ports, word16(new_ulen), new_cd};
	__s64 diff = bpf_csum_diff(from, sizeof(from), to, sizeof(to), (__u16)~udp->check);
	if (diff < 0)
		return -1;
	check = ~fold((__u64)diff);
	return check ? check : 0xffff;
}

static __always_inline int to_peer_path(struct __sk_buff *skb, struct iphdr *ip, struct udphdr *udp,
					__u16 payload)
{
	struct plan p = {};
	struct counts *c;
	__u32 old_cd;
	int check = 0;

	c = find_to_peer(ip, udp, (void *)(long)skb->data_end, payload, &p, &old_cd);
	if (!c || !route(skb, &p))
		return TC_ACT_UNSPEC;
	if (p.verdict != LEAVE_LOCAL_OK) {
		check = new_udp_check(ip, udp, old_cd, 0, &p);
		if (check < 0)
			return TC_ACT_UNSPEC;
	}
	if (rewrite_ip(skb, ip, &p))
		return TC_ACT_SHOT;
	// The new UDP header goes over the old length, checksum and ChannelData header; the old
	// ports (4 bytes right after the IP header) are then removed.
	struct udphdr nu = {.source = p.sport,
			    .dest = p.dport,
			    .len = bpf_htons(p.tot_len - sizeof(struct iphdr)),
			    .check = check};
	if (bpf_skb_store_bytes(skb, L4_OFF + 4, &nu, sizeof(nu), BPF_F_RECOMPUTE_CSUM))
		return TC_ACT_SHOT;
	if (bpf_skb_adjust_room(skb, -CHANNELDATA_HLEN, BPF_ADJ_ROOM_NET, 0))
		return TC_ACT_SHOT;
	int verdict = leave(skb, &p);
	if (verdict != TC_ACT_SHOT) {
		c->to_peer_packets++;
		c->to_peer_bytes += payload - CHANNELDATA_HLEN;
	}
	return verdict;
}

static __always_inline int to_client_path(struct __sk_buff *skb, struct iphdr *ip, struct udphdr *udp,
					  __u16 payload)
{
	struct plan p = {};
	struct counts *c;
	__u32 new_cd;
	int check = 0;

	c = find_to_client(ip, udp, payload, &p, &new_cd);
	if (!c || !route(skb, &p))
		return TC_ACT_UNSPEC;
	if (p.verdict != LEAVE_LOCAL_OK) {
		check = new_udp_check(ip, udp, 0, new_cd, &p);
		if (check < 0)
			return TC_ACT_UNSPEC;
	}
	if (rewrite_ip(skb, ip, &p))
		return TC_ACT_SHOT;
	// Four zero bytes appear right after the IP header: the new UDP and ChannelData headers
	// are written over them and the old UDP header.
	if (bpf_skb_adjust_room(skb, CHANNELDATA_HLEN, BPF_ADJ_ROOM_NET, 0))
		return TC_ACT_SHOT;
	struct {
		struct udphdr udp;
		__u32 cd;
	} nh = {.udp = {.source = p.sport,
			.dest = p.dport,
			.len = bpf_htons(p.tot_len - sizeof(struct iphdr)),
			.check = check},
		.cd = new_cd};
	if (bpf_skb_store_bytes(skb, L4_OFF, &nh, sizeof(nh), BPF_F_RECOMPUTE_CSUM))
		return TC_ACT_SHOT;
	int verdict = leave(skb, &p);
	if (verdict != TC_ACT_SHOT) {
		c->to_client_packets++;
		c->to_client_bytes += payload;
	}
	return verdict;
}

// The IPv4/UDP datagram in an Ethernet frame of `len` bytes at `data`, when it is one the fast
// path may take: no IP options, not fragmented, lengths that agree and no Ethernet padding
// after it (a rewrite would keep it). Returns the UDP length, 0 otherwise.
static __always_inline __u16 parse(void *data, void *data_end, __u32 len, struct iphdr **ipp,
				   struct udphdr **udpp)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u16 ulen;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return 0;
	if (ip->ihl != 5 || ip->version != 4 || ip->protocol != IPPROTO_UDP)
		return 0;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(struct udphdr) || bpf_ntohs(ip->tot_len) != sizeof(struct iphdr) + ulen)
		return 0;
	if (len != ETH_HLEN + sizeof(struct iphdr) + ulen)
		return 0;
	*ipp = ip;
	*udpp = udp;
	return ulen;
}

SEC("classifier")
int tern_fastpath(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip;
	struct udphdr *udp;
	__u16 ulen;

	// GSO super-packets (UDP_SEGMENT) are several datagrams: user space's.
	if (skb->gso_segs > 1)
		return TC_ACT_UNSPEC;
	ulen = parse(data, data_end, skb->len, &ip, &udp);
	if (!ulen)
		return TC_ACT_UNSPEC;

	int verdict = to_peer_path(skb, ip, udp, ulen - sizeof(struct udphdr));
	if (verdict != TC_ACT_UNSPEC)
		return verdict;
	// Pointers are invalid after a helper that may change the packet: reload.
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_UNSPEC;
	return to_client_path(skb, ip, udp, ulen - sizeof(struct udphdr));
}

// The headers of a rewritten frame, up to the UDP header.
struct frame_hdrs {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
} __attribute__((packed));

// Where a rewritten frame leaves at XDP; false: leave it to the TC program. Only a neighbour
// the kernel already knows (no resolution at XDP), out of an interface with XDP (`xdp_out`):
// the one it came in on (the single-NIC VM, where clients and peers are all behind the same
// gateway) or another.
static __always_inline int xdp_route(struct xdp_md *ctx, struct plan *p)
{
	struct bpf_fib_lookup fib = {};

	fib_query(&fib, p, ctx->ingress_ifindex);
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	if (p->tot_len > fib.mtu_result)
		return 0;
	if (!bpf_map_lookup_elem(&xdp_out, &fib.ifindex))
		return 0;
	__builtin_memcpy(p->smac, fib.smac, ETH_ALEN);
	__builtin_memcpy(p->dmac, fib.dmac, ETH_ALEN);
	p->ifindex = fib.ifindex;
	return 1;
}

// The new Ethernet, IP (full checksum: the header is 20 bytes) and UDP headers.
static __always_inline void xdp_headers(struct frame_hdrs *h, const struct iphdr *old, const struct plan *p,
					__u16 check)
{
	struct iphdr ip;
	__u16 *w = (__u16 *)&ip;
	__u32 sum = 0;

	__builtin_memcpy(&ip, old, sizeof(ip));
	ip.saddr = p->saddr;
	ip.daddr = p->daddr;
	ip.tot_len = bpf_htons(p->tot_len);
	ip.frag_off = p->frag_off;
	ip.ttl = NEW_TTL;
	ip.check = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	ip.check = ~fold(sum);
	__builtin_memcpy(h->eth.h_dest, p->dmac, ETH_ALEN);
	__builtin_memcpy(h->eth.h_source, p->smac, ETH_ALEN);
	h->eth.h_proto = bpf_htons(ETH_P_IP);
	__builtin_memcpy(&h->ip, &ip, sizeof(ip));
	h->udp.source = p->sport;
	h->udp.dest = p->dport;
	h->udp.len = bpf_htons(p->tot_len - sizeof(struct iphdr));
	h->udp.check = check;
}

// Sends the frame: a redirect even back out of the interface it came in on, rather than
// XDP_TX, since a veth flushes XDP_TX frames to its other end only when an XDP program runs
// there, while a redirect (ndo_xdp_xmit) also reaches an end that merely has GRO on.
static __always_inline int xdp_leave(const struct plan *p)
{
	__u32 zero = 0;
	__u64 *relayed;

	relayed = bpf_map_lookup_elem(&xdp_stats, &zero);
	if (relayed)
		*relayed += 1;
	return bpf_redirect(p->ifindex, 0);
}

SEC("xdp")
int tern_fastpath_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct frame_hdrs h;
	struct plan p = {};
	struct iphdr *ip;
	struct udphdr *udp;
	struct counts *c;
	__u32 cd;
	__u16 ulen, payload;
	int check;

	ulen = parse(data, data_end, data_end - data, &ip, &udp);
	if (!ulen)
		return XDP_PASS;
	payload = ulen - sizeof(struct udphdr);

	c = find_to_peer(ip, udp, data_end, payload, &p, &cd);
	if (c) {
		if (!xdp_route(ctx, &p))
			return XDP_PASS;
		check = new_udp_check(ip, udp, cd, 0, &p);
		if (check < 0)
			return XDP_PASS;
		xdp_headers(&h, ip, &p, check);
		// The frame starts 4 bytes later: the new headers end where the payload begins.
		if (bpf_xdp_adjust_head(ctx, CHANNELDATA_HLEN))
			return XDP_ABORTED;
		data = (void *)(long)ctx->data;
		if (data + sizeof(h) > (void *)(long)ctx->data_end)
			return XDP_ABORTED;
		__builtin_memcpy(data, &h, sizeof(h));
		c->to_peer_packets++;
		c->to_peer_bytes += payload - CHANNELDATA_HLEN;
		return xdp_leave(&p);
	}
	c = find_to_client(ip, udp, payload, &p, &cd);
	if (!c || !xdp_route(ctx, &p))
		return XDP_PASS;
	check = new_udp_check(ip, udp, 0, cd, &p);
	if (check < 0)
		return XDP_PASS;
	xdp_headers(&h, ip, &p, check);
	// The frame starts 4 bytes earlier: the ChannelData header follows the new headers.
	if (bpf_xdp_adjust_head(ctx, -CHANNELDATA_HLEN))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	if (data + sizeof(h) + CHANNELDATA_HLEN > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, &h, sizeof(h));
	__builtin_memcpy(data + sizeof(h), &cd, CHANNELDATA_HLEN);
	c->to_client_packets++;
	c->to_client_bytes += payload;
	return xdp_leave(&p);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
