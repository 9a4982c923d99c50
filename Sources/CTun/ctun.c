#include "ctun.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

int byst_tun_open(const char *name, int flags, char *actual_name, int *failed_step) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *failed_step = 1;
        return -errno;
    }
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (flags & BYST_TUN_MULTI_QUEUE) request.ifr_flags |= IFF_MULTI_QUEUE;
    if (flags & BYST_TUN_VNET_HDR) request.ifr_flags |= IFF_VNET_HDR;
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int error = errno;
        close(fd);
        *failed_step = 2;
        return -error;
    }
    memcpy(actual_name, request.ifr_name, IFNAMSIZ);
    actual_name[IFNAMSIZ - 1] = 0;
    return fd;
}

int byst_tun_set_offload(int fd, unsigned int flags) {
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) return -errno;
    return 0;
}

int byst_set_dumpable(int dumpable) {
    if (prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL) < 0) return -errno;
    return 0;
}

int byst_get_dumpable(void) {
    int result = prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
    return result < 0 ? -errno : result;
}

int byst_set_thread_name(const char *name) {
    if (prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL) < 0) return -errno;
    return 0;
}

int byst_socket_queued(int fd) {
    int queued = 0;
    return ioctl(fd, SIOCOUTQ, &queued) < 0 ? -1 : queued;
}
