#ifndef BYST_CTUN_H
#define BYST_CTUN_H
// Linux TUN: the ioctl plumbing Swift cannot spell (variadic ioctl, ifreq unions, _IOW).

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

/// Flags for byst_tun_open.
#define BYST_TUN_MULTI_QUEUE 1

/// Opens /dev/net/tun (non-blocking, close-on-exec) and attaches it to interface `name`
/// (IFF_TUN | IFF_NO_PI, plus IFF_MULTI_QUEUE with BYST_TUN_MULTI_QUEUE). The kernel's
/// chosen name is written to `actual_name` (16 bytes). Returns the fd, or -errno; the
/// step that failed is written to `*failed_step` (1 = open, 2 = TUNSETIFF).
int byst_tun_open(const char *name, int flags, char *actual_name, int *failed_step);

#endif
