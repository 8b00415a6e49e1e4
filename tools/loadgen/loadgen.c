/*
 * loadgen: CoAP request load over UDP, for measuring servers
 * (tools/bench_server.py builds it into build/loadgen/ with the system C
 * compiler; nothing built is committed).
 *
 *   loadgen --port N [--host 127.0.0.1] [--path bench] [--non]
 *           [--window 32] [--seconds 2] [--warmup 0.5] [--cpu N]
 *           [--timeout-ms 500] [--max-retransmit 4] [--code 2.05]
 *           [--payload ok] [--batch 64] [--mids-per-socket 65536]
 *
 * Keeps WINDOW GET requests in flight (CON, or NON with --non) for WARMUP
 * seconds (not counted) then SECONDS more, and prints one line of JSON:
 * exchanges completed in the measured part, their rate, latency
 * percentiles, and every way an exchange went wrong.
 *
 * It stands for many clients at once: one client would keep to NSTART
 * (RFC 7252 section 4.7), a server does not count on that.
 *
 * Every request has its own 8-byte token and its own message ID. A UDP
 * socket (one source port: one endpoint for the server) hands out each of
 * the 65,536 message IDs once; then the next request goes out on a fresh
 * socket, so a server's deduplication (RFC 7252 section 4.5) never sees an
 * ID again within a run, whatever the rate.
 *
 * An exchange counts only if the response is well formed, matches the
 * request (the ACK's message ID for a piggybacked response, RFC 7252
 * section 5.2.1; the token in every case, section 5.3.2), has the expected
 * response code and, with --payload, exactly that payload. A response that
 * answers a request with the wrong token, code or payload ends that exchange
 * as bad_token / bad_code / bad_payload (an ACK to a NON request: bad_type)
 * and a new request takes its place.
 *
 * So that the generator is not what limits the figure: it receives with
 * recvmmsg (every response waiting, in one call) and sends the requests that
 * replace them with one sendmmsg; it sleeps in the kernel while the server
 * works (no busy polling, so a server sharing its core is not robbed); it
 * can be pinned to a core of its own (--cpu). "busy" in the output is the
 * share of one core it used during the measured part: well below 1 means it
 * spent its time waiting for the server; "wait" is the share of the
 * measured part it spent ready to run while other work had its core (on a
 * shared machine: how much it was held back).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_WINDOW 4096
#define MAX_BATCH 256
#define MAX_SOCKS 64         /* sockets with requests still in flight */
#define MAX_REQ 512          /* bytes of one request */
#define MAX_RX 1500          /* bytes of one response read */
#define TKL 8
#define CON 0
#define NON 1
#define ACK 2
#define RST 3

/* Latency histogram: 1 us buckets below FINE_US, 1 ms buckets above. */
#define FINE_US 100000
#define COARSE_MS 100000

struct sock {
    int fd;                  /* -1: free */
    uint32_t used;           /* message IDs handed out on this socket */
    uint16_t next_mid;
    int inflight;            /* slots waiting on this socket */
    uint16_t *mid_slot;      /* message ID -> slot + 1 (0: none) */
};

struct slot {
    int used;
    int sock;                /* index into socks[] */
    uint16_t mid;
    uint64_t token;
    int acked;               /* empty ACK seen: a separate response follows */
    int tries;               /* retransmissions so far */
    int64_t first_ns, due_ns, timeout_ns;
    size_t len;
    unsigned char req[MAX_REQ];
};

struct counts {
    uint64_t completed, sent, retransmissions, timeouts, lost, bad_token, bad_code,
        bad_payload, bad_type, malformed, resets, duplicates, send_errors, refused, sockets,
        stalls;
};

static struct sock socks[MAX_SOCKS];
static struct slot *slots;
static int window = 32, batch = 64, mtype = CON, max_retransmit = 4;
static uint32_t mids_per_socket = 65536; /* lower only to test the switch */
static int64_t timeout_ns = 500 * 1000000LL;
static int expect_code = 0x45; /* 2.05 */
static const char *expect_payload = NULL;
static size_t expect_payload_len = 0;
static unsigned char opts[MAX_REQ];
static size_t opts_len = 0;
static struct sockaddr_storage server;
static socklen_t server_len;
static uint64_t next_token_seq = 1;
static int cur_sock = -1;
static struct counts all, measured;
static int64_t measure_from_ns = 0;
static int *free_list; /* slots not in use, a stack */
static int nfree = 0;
static uint32_t *fine, *coarse;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void usage(const char *msg)
{
    fprintf(stderr, "loadgen: %s\nusage: loadgen --port N [--host H] [--path P] [--non] "
                    "[--window N] [--seconds S] [--warmup S] [--cpu N] [--timeout-ms MS] "
                    "[--max-retransmit N] [--code C.DD] [--payload TEXT] [--batch N] "
                    "[--mids-per-socket N]\n", msg);
    exit(2);
}

/* Uri-Path options (number 11) for "a/b/c"; empty segments are skipped. */
static void build_options(const char *path)
{
    int last = 0;
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            int delta = 11 - last;
            last = 11;
            if (opts_len + 3 + n > sizeof(opts) - 32)
                usage("--path too long");
            unsigned char *o = opts + opts_len;
            if (n < 13) {
                *o++ = (unsigned char)(delta << 4 | n);
            } else if (n < 269) {
                *o++ = (unsigned char)(delta << 4 | 13);
                *o++ = (unsigned char)(n - 13);
            } else {
                usage("--path segment longer than 268 bytes");
            }
            memcpy(o, p, n);
            opts_len = (size_t)(o - opts) + n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
}

static int open_sock(void)
{
    int i;
    for (i = 0; i < MAX_SOCKS; i++)
        if (socks[i].fd < 0)
            break;
    if (i == MAX_SOCKS)
        return -1;
    int fd = socket(server.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    int size = 4 << 20; /* room for a burst of responses */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    /* A blocking read wakes at least once a millisecond for the timers. */
    struct timeval tv = {0, 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&server, server_len) < 0)
        die("connect");
    if (!socks[i].mid_slot) {
        socks[i].mid_slot = calloc(65536, sizeof(uint16_t));
        if (!socks[i].mid_slot)
            die("calloc");
    } else {
        memset(socks[i].mid_slot, 0, 65536 * sizeof(uint16_t));
    }
    socks[i].fd = fd;
    socks[i].used = 0;
    socks[i].next_mid = (uint16_t)(now_ns() ^ (int64_t)fd * 40503);
    socks[i].inflight = 0;
    all.sockets++;
    return i;
}

static int live_socks(void)
{
    int n = 0;
    for (int i = 0; i < MAX_SOCKS; i++)
        n += socks[i].fd >= 0;
    return n;
}

/* Send queue: slot indexes, sent per socket with sendmmsg. */
static int sendq[MAX_WINDOW];
static int sendq_len = 0;

static void flush_sends(void)
{
    static struct mmsghdr msgs[MAX_BATCH];
    static struct iovec iov[MAX_BATCH];
    static int idx[MAX_BATCH];
    while (sendq_len > 0) {
        /* Up to a batch of the requests queued for the first queued
         * request's socket (nearly always every request queued). */
        int s = slots[sendq[0]].sock, n = 0, j;
        for (j = 0; j < sendq_len && n < batch; j++) {
            struct slot *sl = &slots[sendq[j]];
            if (sl->sock != s)
                continue;
            iov[n].iov_base = sl->req;
            iov[n].iov_len = sl->len;
            memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
            idx[n++] = j;
        }
        int off = 0, refused = 0;
        while (off < n) {
            int r = sendmmsg(socks[s].fd, msgs + off, (unsigned)(n - off), MSG_DONTWAIT);
            if (r <= 0) {
                if (r < 0 && errno == ECONNREFUSED && refused++ < 2) {
                    all.refused++;
                    continue; /* an earlier ICMP error, reported once: send again */
                }
                /* ENOBUFS/EAGAIN: a CON goes out again when its timer runs,
                 * a NON is lost */
                all.send_errors += (uint64_t)(n - off);
                break;
            }
            off += r;
        }
        /* Drop what was handled from the queue, keeping the order. */
        int k = 0, m = 0;
        for (j = 0; j < sendq_len; j++) {
            if (m < n && idx[m] == j) {
                m++;
                continue;
            }
            sendq[k++] = sendq[j];
        }
        sendq_len = k;
    }
}

static void start_request(int i, int64_t now)
{
    struct slot *sl = &slots[i];
    if (cur_sock < 0 || socks[cur_sock].used >= mids_per_socket) {
        int s = open_sock();
        if (s < 0) {
            all.stalls++; /* every socket still waits on old requests */
            free_list[nfree++] = i;
            return;
        }
        cur_sock = s;
    }
    struct sock *so = &socks[cur_sock];
    uint16_t mid = so->next_mid++;
    so->used++;
    so->inflight++;
    so->mid_slot[mid] = (uint16_t)(i + 1);
    sl->used = 1;
    sl->sock = cur_sock;
    sl->mid = mid;
    /* A counter in the high bits keeps tokens unique; the slot in the low
     * 16 finds the exchange of a NON or separate response. */
    sl->token = (next_token_seq++ << 16) | (uint64_t)i;
    sl->acked = 0;
    sl->tries = 0;
    sl->first_ns = now;
    sl->timeout_ns = timeout_ns;
    sl->due_ns = now + timeout_ns;
    unsigned char *r = sl->req;
    r[0] = (unsigned char)(0x40 | mtype << 4 | TKL);
    r[1] = 0x01; /* GET */
    r[2] = (unsigned char)(mid >> 8);
    r[3] = (unsigned char)mid;
    for (int b = 0; b < TKL; b++)
        r[4 + b] = (unsigned char)(sl->token >> (8 * (TKL - 1 - b)));
    memcpy(r + 4 + TKL, opts, opts_len);
    sl->len = 4 + TKL + opts_len;
    sendq[sendq_len++] = i;
    all.sent++;
    if (now >= measure_from_ns)
        measured.sent++;
}

static void free_slot(int i)
{
    struct slot *sl = &slots[i];
    struct sock *so = &socks[sl->sock];
    if (so->mid_slot[sl->mid] == i + 1)
        so->mid_slot[sl->mid] = 0;
    so->inflight--;
    sl->used = 0;
    free_list[nfree++] = i;
    if (so->inflight == 0 && sl->sock != cur_sock) {
        close(so->fd); /* an earlier socket, done with: a late answer is refused */
        so->fd = -1;
    }
}

static void count(uint64_t *field_all, uint64_t *field_measured, int64_t now)
{
    (*field_all)++;
    if (now >= measure_from_ns)
        (*field_measured)++;
}
#define COUNT(f, now) count(&all.f, &measured.f, now)

static void record_latency(int64_t ns)
{
    int64_t us = ns / 1000;
    if (us < FINE_US)
        fine[us]++;
    else if (us / 1000 < COARSE_MS)
        coarse[us / 1000]++;
    else
        coarse[COARSE_MS - 1]++;
}

static double percentile(uint64_t total, double p)
{
    if (!total)
        return -1;
    uint64_t want = (uint64_t)(p * (double)total);
    if (want >= total)
        want = total - 1;
    uint64_t seen = 0;
    for (int i = 0; i < FINE_US; i++) {
        seen += fine[i];
        if (seen > want)
            return i + 0.5;
    }
    for (int i = 0; i < COARSE_MS; i++) {
        seen += coarse[i];
        if (seen > want)
            return i * 1000.0 + 500;
    }
    return COARSE_MS * 1000.0;
}

static double max_latency(void)
{
    for (int i = COARSE_MS - 1; i >= 0; i--)
        if (coarse[i])
            return i * 1000.0 + 999;
    for (int i = FINE_US - 1; i >= 0; i--)
        if (fine[i])
            return i + 1;
    return -1;
}

/* Where the payload starts (or len when there is none), -1 if the options
 * are malformed (RFC 7252 section 3.1). */
static long payload_at(const unsigned char *d, size_t len, size_t pos)
{
    while (pos < len) {
        unsigned b = d[pos];
        if (b == 0xff)
            return pos + 1 < len ? (long)(pos + 1) : -1; /* marker needs a payload */
        pos++;
        unsigned delta = b >> 4, olen = b & 15;
        if (delta == 15 || olen == 15)
            return -1;
        if (delta == 13)
            pos += 1;
        else if (delta == 14)
            pos += 2;
        if (olen == 13) {
            if (pos >= len)
                return -1;
            olen = 13 + d[pos];
            pos += 1;
        } else if (olen == 14) {
            if (pos + 1 >= len)
                return -1;
            olen = 269 + (d[pos] << 8 | d[pos + 1]);
            pos += 2;
        }
        pos += olen;
        if (pos > len)
            return -1;
    }
    return (long)len;
}

/* Checks a response that matched slot i; ends the exchange either way. */
static void complete(int i, const unsigned char *d, size_t len, int64_t now)
{
    struct slot *sl = &slots[i];
    int tkl = d[0] & 15;
    uint64_t tok = 0;
    for (int b = 0; b < tkl; b++)
        tok = tok << 8 | d[4 + b];
    long at = payload_at(d, len, 4 + (size_t)tkl);
    if (tkl != TKL || tok != sl->token)
        COUNT(bad_token, now);
    else if (at < 0)
        COUNT(malformed, now);
    else if (d[1] != expect_code)
        COUNT(bad_code, now);
    else if (expect_payload && ((size_t)len - (size_t)at != expect_payload_len ||
                                memcmp(d + at, expect_payload, expect_payload_len)))
        COUNT(bad_payload, now);
    else {
        COUNT(completed, now);
        if (now >= measure_from_ns)
            record_latency(now - sl->first_ns);
    }
    free_slot(i);
}

static void send_empty(int s, int type, const unsigned char *d)
{
    unsigned char e[4] = {(unsigned char)(0x40 | type << 4), 0, d[2], d[3]};
    if (send(socks[s].fd, e, 4, MSG_DONTWAIT) < 0)
        all.send_errors++;
}

static void on_datagram(int s, const unsigned char *d, size_t len, int64_t now)
{
    if (len < 4 || d[0] >> 6 != 1 || (d[0] & 15) > 8 || len < 4 + (size_t)(d[0] & 15)) {
        COUNT(malformed, now);
        return;
    }
    int type = d[0] >> 4 & 3, tkl = d[0] & 15;
    uint16_t mid = (uint16_t)(d[2] << 8 | d[3]);
    if (type == ACK || type == RST) {
        int i = socks[s].mid_slot[mid] - 1;
        if (i < 0 || !slots[i].used || slots[i].sock != s || slots[i].acked) {
            COUNT(duplicates, now); /* a second answer to a retransmission */
            return;
        }
        if (type == RST) {
            COUNT(resets, now);
            free_slot(i);
        } else if (mtype == NON) {
            /* Only a CON is acknowledged (RFC 7252 section 4.2, 4.3). */
            COUNT(bad_type, now);
            free_slot(i);
        } else if (d[1] == 0 && tkl == 0 && len == 4) {
            /* Empty ACK: the response comes separately (section 5.2.2). */
            struct slot *sl = &slots[i];
            sl->acked = 1;
            sl->due_ns = now + 4 * timeout_ns;
            socks[s].mid_slot[mid] = 0;
        } else {
            complete(i, d, len, now);
        }
        return;
    }
    /* CON or NON: a response to a NON request or a separate response,
     * found by its token. */
    uint64_t tok = 0;
    for (int b = 0; b < tkl; b++)
        tok = tok << 8 | d[4 + b];
    int i = (int)(tok & 0xffff);
    if (tkl == TKL && i < window && slots[i].used && slots[i].sock == s && slots[i].token == tok) {
        if (type == CON)
            send_empty(s, ACK, d);
        complete(i, d, len, now);
    } else {
        /* No request of ours has this token: it matches no exchange. */
        COUNT(bad_token, now);
        if (type == CON)
            send_empty(s, RST, d);
    }
}

static int64_t next_due = 0;

static void run_timers(int64_t now)
{
    if (now < next_due)
        return;
    int64_t soonest = now + timeout_ns;
    for (int i = 0; i < window; i++) {
        struct slot *sl = &slots[i];
        if (!sl->used)
            continue;
        if (sl->due_ns <= now) {
            if (mtype == CON && !sl->acked && sl->tries < max_retransmit) {
                sl->tries++;
                sl->timeout_ns *= 2; /* RFC 7252 section 4.2 */
                sl->due_ns = now + sl->timeout_ns;
                sendq[sendq_len++] = i;
                COUNT(retransmissions, now);
            } else {
                if (mtype == CON)
                    COUNT(timeouts, now);
                else
                    COUNT(lost, now);
                free_slot(i);
                continue;
            }
        }
        if (sl->due_ns < soonest)
            soonest = sl->due_ns;
    }
    next_due = soonest;
}

static void print_json(double seconds, double busy, double wait, int cpu)
{
    uint64_t n = measured.completed;
    printf("{\"completed\": %llu, \"rate\": %.1f, \"seconds\": %.3f, \"window\": %d, "
           "\"type\": \"%s\", \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
           "\"max_us\": %.1f, \"busy\": %.3f, \"wait\": %.3f, \"cpu\": %d, \"sent\": %llu, "
           "\"retransmissions\": %llu, \"timeouts\": %llu, \"lost\": %llu, "
           "\"bad_token\": %llu, \"bad_code\": %llu, \"bad_payload\": %llu, "
           "\"bad_type\": %llu, "
           "\"malformed\": %llu, \"resets\": %llu, \"duplicates\": %llu, "
           "\"send_errors\": %llu, \"refused\": %llu, \"sockets\": %llu, \"stalls\": %llu}\n",
           (unsigned long long)n, n / seconds, seconds, window, mtype == CON ? "CON" : "NON",
           percentile(n, 0.50), percentile(n, 0.90), percentile(n, 0.99), max_latency(), busy,
           wait, cpu, (unsigned long long)measured.sent,
           (unsigned long long)measured.retransmissions, (unsigned long long)measured.timeouts,
           (unsigned long long)measured.lost, (unsigned long long)measured.bad_token,
           (unsigned long long)measured.bad_code, (unsigned long long)measured.bad_payload,
           (unsigned long long)measured.bad_type,
           (unsigned long long)measured.malformed, (unsigned long long)measured.resets,
           (unsigned long long)measured.duplicates, (unsigned long long)all.send_errors,
           (unsigned long long)all.refused, (unsigned long long)all.sockets,
           (unsigned long long)all.stalls);
}

/* Nanoseconds this process has waited, runnable, for a CPU that something
 * else had (the second figure of /proc/self/schedstat); -1 where the kernel
 * does not say. */
static double runq_wait_ns(void)
{
    FILE *f = fopen("/proc/self/schedstat", "r");
    unsigned long long on_cpu, waited;
    int n = f ? fscanf(f, "%llu %llu", &on_cpu, &waited) : 0;
    if (f)
        fclose(f);
    return n == 2 ? (double)waited : -1;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = NULL, *path = "bench";
    double seconds = 2.0, warmup = 0.5;
    int cpu = -1;
    static struct option lo[] = {
        {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"path", 1, 0, 'P'},
        {"non", 0, 0, 'N'}, {"window", 1, 0, 'w'}, {"seconds", 1, 0, 's'},
        {"warmup", 1, 0, 'W'}, {"cpu", 1, 0, 'c'}, {"timeout-ms", 1, 0, 't'},
        {"max-retransmit", 1, 0, 'r'}, {"code", 1, 0, 'C'}, {"payload", 1, 0, 'y'},
        {"batch", 1, 0, 'b'}, {"mids-per-socket", 1, 0, 'm'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'H': host = optarg; break;
        case 'p': port = optarg; break;
        case 'P': path = optarg; break;
        case 'N': mtype = NON; break;
        case 'w': window = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'W': warmup = atof(optarg); break;
        case 'c': cpu = atoi(optarg); break;
        case 't': timeout_ns = (int64_t)(atof(optarg) * 1e6); break;
        case 'r': max_retransmit = atoi(optarg); break;
        case 'C': {
            int c, dd;
            if (sscanf(optarg, "%d.%d", &c, &dd) != 2 || c < 0 || c > 7 || dd < 0 || dd > 31)
                usage("--code wants a class and detail, such as 2.05");
            expect_code = c << 5 | dd;
            break;
        }
        case 'y': expect_payload = optarg; expect_payload_len = strlen(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'm': mids_per_socket = (uint32_t)atol(optarg); break;
        default: usage("unknown option");
        }
    }
    if (!port)
        usage("--port is required");
    if (window < 1 || window > MAX_WINDOW)
        usage("--window is 1 to 4096");
    if (batch < 1 || batch > MAX_BATCH)
        usage("--batch is 1 to 256");
    if (mids_per_socket < 1 || mids_per_socket > 65536)
        usage("--mids-per-socket is 1 to 65536");
    if (seconds <= 0 || warmup < 0 || timeout_ns <= 0 || max_retransmit < 0)
        usage("--seconds, --timeout-ms must be positive; --warmup, --max-retransmit not negative");
    build_options(path);

    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            cpu = -1; /* not allowed here: say so in the output */
    }

    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_DGRAM;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "loadgen: %s port %s: %s\n", host, port, gai_strerror(gai));
        return 2;
    }
    memcpy(&server, ai->ai_addr, ai->ai_addrlen);
    server_len = ai->ai_addrlen;
    freeaddrinfo(ai);

    for (int i = 0; i < MAX_SOCKS; i++)
        socks[i].fd = -1;
    slots = calloc((size_t)window, sizeof *slots);
    fine = calloc(FINE_US, sizeof *fine);
    coarse = calloc(COARSE_MS, sizeof *coarse);
    free_list = calloc((size_t)window, sizeof *free_list);
    if (!slots || !fine || !coarse || !free_list)
        die("calloc");
    for (int i = window - 1; i >= 0; i--)
        free_list[nfree++] = i;

    static struct mmsghdr msgs[MAX_BATCH];
    static struct iovec iov[MAX_BATCH];
    static unsigned char bufs[MAX_BATCH][MAX_RX];
    for (int i = 0; i < MAX_BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = MAX_RX;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    int64_t start = now_ns();
    measure_from_ns = start + (int64_t)(warmup * 1e9);
    int64_t end = measure_from_ns + (int64_t)(seconds * 1e9);
    double cpu_at_measure = -1, wait_at_measure = -1;
    int64_t now = start;

    while (now < end) {
        if (cpu_at_measure < 0 && now >= measure_from_ns) {
            cpu_at_measure = cpu_s();
            wait_at_measure = runq_wait_ns();
        }
        int nstart = nfree;
        nfree = 0;
        static int starting[MAX_WINDOW];
        memcpy(starting, free_list, (size_t)nstart * sizeof *starting);
        for (int i = 0; i < nstart; i++)
            start_request(starting[i], now);
        run_timers(now);
        flush_sends();

        /* Read every socket that has something. With one socket (nearly
         * always) a blocking recvmmsg waits for the first response and
         * takes all that are queued, at most a millisecond. */
        int nlive = live_socks();
        struct pollfd pf[MAX_SOCKS];
        int map[MAX_SOCKS], np = 0;
        for (int s = 0; s < MAX_SOCKS; s++)
            if (socks[s].fd >= 0) {
                pf[np].fd = socks[s].fd;
                pf[np].events = POLLIN;
                map[np++] = s;
            }
        if (nlive > 1) {
            struct timespec ts = {0, 1000000};
            if (ppoll(pf, (nfds_t)np, &ts, NULL) < 0 && errno != EINTR)
                die("ppoll");
        }
        for (int k = 0; k < np; k++) {
            int s = map[k];
            if (socks[s].fd < 0)
                continue; /* closed meanwhile: its last exchange ended */
            if (nlive > 1 && !(pf[k].revents & (POLLIN | POLLERR)))
                continue;
            int flags = nlive > 1 ? MSG_DONTWAIT : MSG_WAITFORONE;
            for (int b = 0; b < batch; b++)
                iov[b].iov_len = MAX_RX;
            int n = recvmmsg(socks[s].fd, msgs, (unsigned)batch, flags, NULL);
            if (n < 0) {
                if (errno == ECONNREFUSED) {
                    all.refused++; /* nobody on the port (ICMP) */
                    /* do not spin: give the timers their turn */
                    struct timespec ts = {0, 1000000};
                    nanosleep(&ts, NULL);
                } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    die("recvmmsg");
                }
                continue;
            }
            now = now_ns();
            for (int m = 0; m < n; m++)
                on_datagram(s, bufs[m], msgs[m].msg_len, now);
        }
        now = now_ns();
    }
    double busy = 0, wait = -1, waited = runq_wait_ns();
    double wall = (double)(now - measure_from_ns) / 1e9;
    if (cpu_at_measure >= 0 && wall > 0) {
        busy = (cpu_s() - cpu_at_measure) / wall;
        if (waited >= 0 && wait_at_measure >= 0)
            wait = (waited - wait_at_measure) / 1e9 / wall;
    }
    print_json(wall > 0 ? wall : seconds, busy, wait, cpu);
    return 0;
}
