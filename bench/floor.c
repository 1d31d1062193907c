// bench/floor.c: build with `gcc -O2 -o floor bench/floor.c`, run as `taskset -c 1 ./floor PORT [N]`
// against a keep-alive nginx (burst.sh's config) on 127.0.0.1:PORT.
// The kernel's floor for a 10,000-user release: N keep-alive connections to 127.0.0.1:PORT, each
// sends GET /warm and reads its answer; after a pause, one tight loop writes GET /buy on every
// connection (nonblocking send), timing each send from the loop's start. Prints p50/p99/max.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/epoll.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int port = atoi(argv[1]), n = argc > 2 ? atoi(argv[2]) : 10000;
    int *fd = malloc(n * sizeof(int)); double *t = malloc(n * sizeof(double));
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
        if (i % 1000 == 999) usleep(100000);
    }
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) { struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &e); }
    // Render every request ahead (as an armed release does), then wait.
    char (*r)[128] = malloc(n * 128); int *rl = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) rl[i] = snprintf(r[i], 128, "GET /buy?u=%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Load-Test: floor\r\n\r\n", i, port);
    sleep(2);
    double c0 = cpu(); double t0 = now();
    for (int i = 0; i < n; i++) {
        t[i] = now() - t0;
        if (send(fd[i], r[i], rl[i], MSG_DONTWAIT | MSG_NOSIGNAL) != rl[i]) { perror("send"); return 1; }
    }
    double t1 = now() - t0; double c1 = cpu() - c0;
    int got = 0; struct epoll_event ev[1024];
    while (got < n) { int k = epoll_wait(ep, ev, 1024, 5000); if (k <= 0) break; for (int j = 0; j < k; j++) { while (recv(fd[ev[j].data.u32], buf, sizeof buf, 0) > 0) {} got++; } }
    double t2 = now() - t0;
    qsort(t, n, sizeof(double), cmp);
    printf("floor: %d sends in %.1f ms wall, %.1f ms CPU (%.2f us CPU each): send offset p50 %.1f ms p99 %.1f ms; all answers by %.1f ms\n",
           n, t1 * 1e3, c1 * 1e3, c1 * 1e6 / n, t[n / 2] * 1e3, t[(int)(n * 0.99)] * 1e3, t2 * 1e3);
    return 0;
}
