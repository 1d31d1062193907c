// A recording HTTP/1.1 server for bench/replay.sh and bench/burst.sh: one epoll loop on 127.0.0.1:PORT, keep-alive,
// any number of connections, answers every request `200 ok`. Each request's arrival is the
// kernel's receive timestamp of the bytes that began it (SO_TIMESTAMPNS, read from recvmsg's
// control message; CLOCK_REALTIME, ns), so the stamp is not delayed by this process being
// scheduled late. One line per request, "NS METHOD URI", to OUT (buffered; written out on
// SIGTERM or SIGINT, then it exits).
//
// Build: gcc -O2 -o recorder bench/recorder.c        Run: recorder PORT OUT
//
// Bodies are framed by Content-Length (or chunked); pipelined requests are served in order and
// stamped with the receive time of the read that held their first byte.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    char *buf;
    size_t len, cap;
    long long start_ns;  // receive time of the first byte of the request in buf (0: none yet)
    char *out;           // unsent answer bytes
    size_t out_len, out_off;
};

static volatile sig_atomic_t stop;
static struct conn *conns;
static int nconns;
static FILE *out;
static unsigned long long requests, untimed;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void drop(int ep, int fd) {
    struct conn *c = &conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->buf);
    free(c->out);
    memset(c, 0, sizeof *c);
}

// The header value of `name` in [h, end), or NULL.
static const char *header(const char *h, const char *end, const char *name, size_t *vlen) {
    size_t n = strlen(name);
    for (const char *p = h; p < end;) {
        const char *eol = memmem(p, end - p, "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *vlen = eol - v;
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

// The length of a complete chunked body at b (of n bytes), or -1 if more is needed.
static long chunked_len(const char *b, size_t n) {
    size_t i = 0;
    for (;;) {
        const char *eol = memmem(b + i, n - i, "\r\n", 2);
        if (!eol) return -1;
        unsigned long size = strtoul(b + i, NULL, 16);
        i = eol - b + 2;
        if (size == 0) {
            // trailers end with an empty line
            for (;;) {
                const char *e = memmem(b + i, n - i, "\r\n", 2);
                if (!e) return -1;
                size_t line = e - (b + i);
                i = e - b + 2;
                if (line == 0) return (long)i;
            }
        }
        if (n - i < size + 2) return -1;
        i += size + 2;
    }
}

static int send_out(int ep, int fd) {
    struct conn *c = &conns[fd];
    while (c->out_off < c->out_len) {
        ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                return 0;
            }
            return -1;
        }
        c->out_off += w;
    }
    if (c->out_len) {
        c->out_len = c->out_off = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
    return 0;
}

static void queue(struct conn *c, const char *s, size_t n) {
    c->out = realloc(c->out, c->out_len + n);
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

// Serves every complete request in the buffer; -1 to close the connection.
static int serve(int ep, int fd, long long read_ns) {
    static const char ok[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    static const char ok_head[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n";
    struct conn *c = &conns[fd];
    int close_after = 0;
    size_t off = 0;
    while (off < c->len) {
        if (!c->start_ns) c->start_ns = read_ns;
        char *h = c->buf + off;
        size_t avail = c->len - off;
        char *hend = memmem(h, avail, "\r\n\r\n", 4);
        if (!hend) break;
        size_t head = hend - h + 4;
        char *sp1 = memchr(h, ' ', head);
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', h + head - sp1 - 1) : NULL;
        char *eol = memmem(h, head, "\r\n", 2);
        if (!sp1 || !sp2 || sp2 > eol) return -1;
        size_t body = 0, vlen;
        const char *v;
        if ((v = header(eol + 2, hend + 2, "Content-Length", &vlen))) {
            body = strtoul(v, NULL, 10);
        } else if ((v = header(eol + 2, hend + 2, "Transfer-Encoding", &vlen)) && vlen >= 7 &&
                   strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
            long n = chunked_len(h + head, avail - head);
            if (n < 0) break;
            body = n;
        }
        if (avail < head + body) break;
        if ((v = header(eol + 2, hend + 2, "Connection", &vlen)) && vlen == 5 &&
            strncasecmp(v, "close", 5) == 0)
            close_after = 1;
        fprintf(out, "%lld %.*s %.*s\n", c->start_ns, (int)(sp1 - h), h, (int)(sp2 - sp1 - 1),
                sp1 + 1);
        requests++;
        int is_head = (sp1 - h) == 4 && memcmp(h, "HEAD", 4) == 0;
        if (is_head)
            queue(c, ok_head, sizeof ok_head - 1);
        else
            queue(c, ok, sizeof ok - 1);
        off += head + body;
        // A pipelined request already in the buffer arrived with this read.
        c->start_ns = 0;
        if (off < c->len) c->start_ns = read_ns;
        if (close_after) break;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    if (send_out(ep, fd) < 0) return -1;
    return close_after ? -1 : 0;
}

static void on_readable(int ep, int fd) {
    struct conn *c = &conns[fd];
    for (;;) {
        // 4 KiB to begin with: a burst holds 10,000 connections, most of them idle.
        if (c->cap - c->len < 1024) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->buf = realloc(c->buf, c->cap);
        }
        char ctl[CMSG_SPACE(sizeof(struct timespec)) * 2];
        struct iovec iov = {.iov_base = c->buf + c->len, .iov_len = c->cap - c->len};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            drop(ep, fd);
            return;
        }
        if (n == 0) {
            drop(ep, fd);
            return;
        }
        long long ns = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        }
        if (!ns) {
            ns = now_ns();
            untimed++;
        }
        c->len += n;
        if (serve(ep, fd, ns) < 0) {
            drop(ep, fd);
            return;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT OUT\n", argv[0]);
        return 2;
    }
    out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    setvbuf(out, NULL, _IOFBF, 8 << 20);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    nconns = rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
    conns = calloc(nconns, sizeof *conns);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Accepted sockets inherit it; it is set on each of them too.
    setsockopt(ls, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 65535) < 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    fprintf(stderr, "recorder: listening on 127.0.0.1:%s\n", argv[1]);

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (cfd < 0) break;
                    if (cfd >= nconns) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (send_out(ep, fd) < 0) {
                    drop(ep, fd);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(ep, fd);
        }
    }
    fflush(out);
    fclose(out);
    fprintf(stderr, "recorder: %llu requests (%llu without a kernel timestamp)\n", requests, untimed);
    return 0;
}
