// bench/floor2.c: the physical floor of a 10,000-user release on this machine, from T threads.
// Build with `gcc -O2 -pthread -o floor2 bench/floor2.c`; run as `./floor2 PORT [N] [T] [CPUS] [PAUSE_MS]`
// against burst.sh's nginx (one worker, core 0, keep-alive) on 127.0.0.1:PORT.
// Opens N keep-alive connections (GET /warm on each, answer read), renders every GET /buy
// ahead, then T threads (thread k pinned to the k-th core of CPUS, default "1,0") each write
// their N/T requests in one loop of nonblocking sends from a common start instant and read the
// answers on their own epoll. Prints, from the common start: when the 50th/99th percentile send
// left, when the 99th percentile (the 9,900th of 10,000) and the last answer came back, and each
// thread's CPU per send, and the common start instant in CLOCK_REALTIME ns (to compare with a
// recording server's kernel stamps: bench/floor2.sh). Nothing else is done between two sends:
// no generator can beat it.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/epoll.h>
static long long real_ns(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
static int n, nt, *fd, *rl, cpus[64];
static char (*r)[128];
static double *sent, *done, start, cpu_each[64];
static void *worker(void *arg) {
    int k = (int)(long)arg, lo = k * n / nt, hi = (k + 1) * n / nt;
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpus[k], &s); pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    int ep = epoll_create1(0);
    for (int i = lo; i < hi; i++) { struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &e); }
    while (now() < start) {}
    double c0 = cpu();
    for (int i = lo; i < hi; i++) {
        sent[i] = now() - start;
        if (send(fd[i], r[i], rl[i], MSG_DONTWAIT | MSG_NOSIGNAL) != rl[i]) { perror("send"); exit(1); }
    }
    cpu_each[k] = (cpu() - c0) / (hi - lo);
    char buf[4096]; int got = 0; struct epoll_event ev[1024];
    while (got < hi - lo) {
        int m = epoll_wait(ep, ev, 1024, 5000); if (m <= 0) break;
        double t = now() - start;
        for (int j = 0; j < m; j++) {
            int i = ev[j].data.u32;
            if (recv(fd[i], buf, sizeof buf, 0) > 0 && done[i] < 0) { done[i] = t; got++; epoll_ctl(ep, EPOLL_CTL_DEL, fd[i], NULL); }
        }
    }
    return NULL;
}
int main(int argc, char **argv) {
    int port = atoi(argv[1]); n = argc > 2 ? atoi(argv[2]) : 10000; nt = argc > 3 ? atoi(argv[3]) : 2;
    const char *cl = argc > 4 ? argv[4] : "1,0";
    // PAUSE_MS (5th argument, default 100) after every 1,000 connections: 1000 opens them over
    // 10 s, as burst.sh's countdown does.
    int pause_ms = argc > 5 ? atoi(argv[5]) : 100;
    for (int k = 0; k < nt; k++) { cpus[k] = atoi(cl); const char *c = strchr(cl, ','); if (c) cl = c + 1; }
    fd = malloc(n * sizeof(int)); rl = malloc(n * sizeof(int)); r = malloc(n * 128);
    sent = malloc(n * sizeof(double)); done = malloc(n * sizeof(double));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    char buf[4096], req[256];
    for (int i = 0; i < n; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1; setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd[i], (void *)&a, sizeof a)) { perror("connect"); return 1; }
        int l = snprintf(req, sizeof req, "GET /warm HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Load-Test: floor\r\n\r\n", port);
        send(fd[i], req, l, 0);
        if (recv(fd[i], buf, sizeof buf, 0) <= 0) { perror("recv"); return 1; }
        fcntl(fd[i], F_SETFL, O_NONBLOCK);
        rl[i] = snprintf(r[i], 128, "GET /buy?u=%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Load-Test: floor\r\n\r\n", i, port);
        done[i] = -1;
        if (i % 1000 == 999) usleep(pause_ms * 1000);
    }
    sleep(2);
    double m0 = now(); long long r0 = real_ns();
    start = m0 + 0.2;
    long long start_real = r0 + 200000000LL;
    pthread_t th[64];
    for (int k = 0; k < nt; k++) pthread_create(&th[k], NULL, worker, (void *)(long)k);
    for (int k = 0; k < nt; k++) pthread_join(th[k], NULL);
    int answered = 0; for (int i = 0; i < n; i++) if (done[i] >= 0) done[answered++] = done[i];
    qsort(sent, n, sizeof(double), cmp); qsort(done, answered, sizeof(double), cmp);
    printf("floor2: %d sends from %d thread(s): sent p50 %.1f ms, p99 %.1f ms, last %.1f ms; "
           "answered %d, p50 %.1f ms, p99 (the %dth) %.1f ms, last %.1f ms; CPU per send",
           n, nt, sent[n / 2] * 1e3, sent[(int)(n * 0.99) - 1] * 1e3, sent[n - 1] * 1e3, answered,
           done[answered / 2] * 1e3, (int)(n * 0.99), done[(int)(n * 0.99) - 1] * 1e3, done[answered - 1] * 1e3);
    for (int k = 0; k < nt; k++) printf(" %.2f us (core %d)", cpu_each[k] * 1e6, cpus[k]);
    printf("; start %lld ns (CLOCK_REALTIME)\n", start_real);
    return 0;
}
