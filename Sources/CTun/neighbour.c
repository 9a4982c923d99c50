#include "ctun.h"
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int byst_interface_hwaddr(const char *name, unsigned char mac[6]) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    int result = ioctl(fd, SIOCGIFHWADDR, &request) < 0 ? -errno : 0;
    close(fd);
    if (result < 0) return result;
    if (request.ifr_hwaddr.sa_family != ARPHRD_ETHER) return -EAFNOSUPPORT;
    memcpy(mac, request.ifr_hwaddr.sa_data, 6);
    return 0;
}

int byst_send_link_broadcast(unsigned int ifindex, unsigned short ethertype, const void *payload, unsigned long length) {
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ethertype));
    if (fd < 0) return -errno;
    struct sockaddr_ll address;
    memset(&address, 0, sizeof address);
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ethertype);
    address.sll_ifindex = (int)ifindex;
    address.sll_halen = 6;
    memset(address.sll_addr, 0xff, 6);
    ssize_t sent = sendto(fd, payload, length, 0, (struct sockaddr *)&address, sizeof address);
    int result = sent < 0 ? -errno : ((unsigned long)sent == length ? 0 : -EMSGSIZE);
    close(fd);
    return result;
}

int byst_send_icmp6_all_nodes(unsigned int ifindex, const void *payload, unsigned long length) {
    int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (fd < 0) return -errno;
    int hops = 255;
    int index = (int)ifindex;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) < 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    struct sockaddr_in6 address;
    memset(&address, 0, sizeof address);
    address.sin6_family = AF_INET6;
    address.sin6_addr.s6_addr[0] = 0xff;
    address.sin6_addr.s6_addr[1] = 0x02;
    address.sin6_addr.s6_addr[15] = 0x01;
    address.sin6_scope_id = ifindex;
    ssize_t sent = sendto(fd, payload, length, 0, (struct sockaddr *)&address, sizeof address);
    int result = sent < 0 ? -errno : ((unsigned long)sent == length ? 0 : -EMSGSIZE);
    close(fd);
    return result;
}
