/*
 * echo: the fastest CoAP "server" there is, to find the load generator's own
 * ceiling (tools/bench_server.py). It parses nothing: every datagram that
 * looks like a CoAP request gets a response with its message ID and token
 * and the payload "ok": an ACK 2.05 for a CON, a NON 2.05 for a NON
 * (RFC 7252 section 5.2). It reads and answers in batches (recvmmsg,
 * sendmmsg), so per request it costs far less than the generator.
 *
 *   echo [--port N] [--host 127.0.0.1] [--cpu N]
 *
 * Prints "ready PORT" once bound (port 0, the default, picks a free one) and
 * runs until it is killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAX_RX 1500

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, cpu = -1, o;
    static struct option lo[] = {
        {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"cpu", 1, 0, 'c'}, {0, 0, 0, 0}};
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': cpu = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: echo [--port N] [--host A.B.C.D] [--cpu N]\n");
            return 2;
        }
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set); /* best effort */
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("echo: bind");
        return 2;
    }
    int size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    socklen_t alen = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &alen);
    printf("ready %d\n", ntohs(a.sin_port));
    fflush(stdout);

    static unsigned char in[BATCH][MAX_RX], out[BATCH][4 + 8 + 3];
    static struct sockaddr_in from[BATCH];
    static struct mmsghdr rx[BATCH], tx[BATCH];
    static struct iovec riov[BATCH], tiov[BATCH];
    uint16_t mid = 1;
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            riov[i].iov_base = in[i];
            riov[i].iov_len = MAX_RX;
            memset(&rx[i].msg_hdr, 0, sizeof rx[i].msg_hdr);
            rx[i].msg_hdr.msg_iov = &riov[i];
            rx[i].msg_hdr.msg_iovlen = 1;
            rx[i].msg_hdr.msg_name = &from[i];
            rx[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo: recvmmsg");
            return 1;
        }
        int k = 0;
        for (int i = 0; i < n; i++) {
            unsigned char *d = in[i];
            unsigned len = rx[i].msg_len, tkl = d[0] & 15, type = d[0] >> 4 & 3;
            if (len < 4 || d[0] >> 6 != 1 || tkl > 8 || len < 4 + tkl || type > 1)
                continue; /* not a request: no answer */
            unsigned char *r = out[k];
            r[0] = (unsigned char)((type == 0 ? 0x60 : 0x50) | tkl);
            r[1] = 0x45;
            if (type == 0) {
                r[2] = d[2];
                r[3] = d[3];
            } else {
                r[2] = (unsigned char)(mid >> 8);
                r[3] = (unsigned char)mid;
                mid++;
            }
            memcpy(r + 4, d + 4, tkl);
            memcpy(r + 4 + tkl, "\xffok", 3);
            tiov[k].iov_base = r;
            tiov[k].iov_len = 4 + tkl + 3;
            memset(&tx[k].msg_hdr, 0, sizeof tx[k].msg_hdr);
            tx[k].msg_hdr.msg_iov = &tiov[k];
            tx[k].msg_hdr.msg_iovlen = 1;
            tx[k].msg_hdr.msg_name = &from[i];
            tx[k].msg_hdr.msg_namelen = rx[i].msg_hdr.msg_namelen;
            k++;
        }
        for (int off = 0; off < k;) {
            int r = sendmmsg(fd, tx + off, (unsigned)(k - off), 0);
            if (r <= 0)
                break; /* a full buffer: the client retransmits */
            off += r;
        }
    }
}
