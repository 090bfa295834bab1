/* big_files.c — see big_files.h. */
#include "big_files.h"
#include "http_client.h"
#include "iox_test.h"
#include <dirent.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

void bf_fill(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; p[i] = (unsigned char)x; }
}

int bf_write(const char *root, const char *name, const unsigned char *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int bf_count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int bf_wait_fds(pid_t pid, int n)
{
    int fds = -1;
    for (int i = 0; i < 100; i++) {
        if ((fds = bf_count_fds(pid)) == n) break;
        usleep(hc_slow(50) * 1000);
    }
    return fds;
}

int bf_settled_fds(pid_t pid)
{
    int last = bf_count_fds(pid), same = 0;
    for (int i = 0; i < 200 && same < 6; i++) {
        usleep(hc_slow(50) * 1000);
        int n = bf_count_fds(pid);
        same = n == last ? same + 1 : 0;
        last = n;
    }
    return last;
}

void bf_abandon_pair(uint16_t port, const char *req)
{
    struct hc_conn c[2];
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(hc_connect(&c[k], port, 2000), 0);
        CU_ASSERT_EQUAL(hc_send_str(&c[k], req), 0);
    }
    for (int k = 0; k < 2; k++) {
        char buf[65536];
        ssize_t got = recv(c[k].fd, buf, sizeof buf, MSG_WAITALL);
        CU_ASSERT(got > 0);
        if (k) hc_reset(&c[k]);
        else hc_close(&c[k]);
    }
}
