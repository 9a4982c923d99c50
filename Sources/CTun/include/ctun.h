#ifndef BYST_CTUN_H
#define BYST_CTUN_H
// Linux TUN: the ioctl plumbing Swift cannot spell (variadic ioctl, ifreq unions, _IOW),
// and the one other variadic call the node needs (prctl).

#include <sys/epoll.h>   // for DataPlane and Benchmarks/LeanRelay (Glibc does not export epoll)
#include <sys/eventfd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <spawn.h>
#include <malloc.h>      // mallopt (Glibc does not export it)

/// Flags for byst_tun_open.
#define BYST_TUN_MULTI_QUEUE 1
/// Each packet read and written starts with a 10-byte struct virtio_net_hdr (IFF_VNET_HDR).
#define BYST_TUN_VNET_HDR 2

/// Offloads for byst_tun_set_offload (linux/if_tun.h TUN_F_*).
#define BYST_TUN_F_CSUM 0x01
#define BYST_TUN_F_TSO4 0x02
#define BYST_TUN_F_TSO6 0x04
#define BYST_TUN_F_TSO_ECN 0x08
#define BYST_TUN_F_USO4 0x20
#define BYST_TUN_F_USO6 0x40

/// Opens /dev/net/tun (non-blocking, close-on-exec) and attaches it to interface `name`
/// (IFF_TUN | IFF_NO_PI, plus IFF_MULTI_QUEUE with BYST_TUN_MULTI_QUEUE). The kernel's
/// chosen name is written to `actual_name` (16 bytes). Returns the fd, or -errno; the
/// step that failed is written to `*failed_step` (1 = open, 2 = TUNSETIFF).
int byst_tun_open(const char *name, int flags, char *actual_name, int *failed_step);

/// TUNSETOFFLOAD: which offloaded packets the kernel may hand us (and we may write).
/// Returns 0 or -errno (EINVAL for flags this kernel does not know).
int byst_tun_set_offload(int fd, unsigned int flags);

/// prctl(PR_SET_DUMPABLE, dumpable): 0 = no core dumps, no ptrace or /proc/PID/mem by
/// other processes of our user. Returns 0 or -errno.
int byst_set_dumpable(int dumpable);

/// prctl(PR_GET_DUMPABLE): 1 dumpable, 0 not, or -errno.
int byst_get_dumpable(void);

/// prctl(PR_SET_NAME): the calling thread's name as the kernel shows it (comm, 15 bytes
/// kept). Returns 0 or -errno.
int byst_set_thread_name(const char *name);

/* Bytes a TCP socket holds in its send queue, sent or not, unacknowledged (SIOCOUTQ); -1 on
 * error. The data plane's packet striping balances links by it. */
int byst_socket_queued(int fd);

/* Announcing an address on a LAN (docs/OPERATIONS.md "High availability", [ha] address);
 * Sources/CTun/neighbour.c. Each returns 0 or -errno. */

/// The interface's 6-byte link-layer (Ethernet) address (SIOCGIFHWADDR); -EAFNOSUPPORT if it
/// has none of 6 bytes.
int byst_interface_hwaddr(const char *name, unsigned char mac[6]);

/// Sends `payload` as one Ethernet frame of type `ethertype` to the broadcast address out
/// of interface `ifindex` (an AF_PACKET datagram socket: CAP_NET_RAW).
int byst_send_link_broadcast(unsigned int ifindex, unsigned short ethertype, const void *payload, unsigned long length);

/// Sends the ICMPv6 message `payload` (checksum left 0: the kernel fills it) to ff02::1
/// out of interface `ifindex` with hop limit 255, as neighbour discovery requires (a raw
/// ICMPv6 socket: CAP_NET_RAW).
int byst_send_icmp6_all_nodes(unsigned int ifindex, const void *payload, unsigned long length);

/// posix_spawn_file_actions_addclosefrom_np (glibc ≥ 2.34; Swift's Glibc module does not
/// export it): the child closes every descriptor from `lowest` up. 0, or an error number
/// (ENOSYS on an older glibc). Sources/CTun/spawn.c.
int byst_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
