/* big_files.h — helpers the big-file suites share (file_splice, file_zc):
 * reproducible bodies written into a temp root, the server's descriptor
 * count (leaks show there first: a pipe or chunk held past its stream
 * keeps a descriptor or a connection open), and clients that give up in
 * the middle of a body. */
#ifndef IOX_TEST_BIG_FILES_H
#define IOX_TEST_BIG_FILES_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* n pseudo-random bytes from seed (xorshift32): the same seed, the same
 * bytes, so a body can be compared without keeping a second copy. */
void bf_fill(unsigned char *p, size_t n, uint32_t seed);
/* root/name := p[0, n). 0, or -1 (the file may be partly written). */
int bf_write(const char *root, const char *name, const unsigned char *p, size_t n);
/* Open descriptors of process pid (/proc/pid/fd), or -1. */
int bf_count_fds(pid_t pid);
/* Wait up to 5 s (longer under valgrind) for pid's count to be n; the
 * count last seen. */
int bf_wait_fds(pid_t pid, int n);
/* pid's count once it has not changed for 300 ms (the closes of earlier
 * cases reach the server's ring asynchronously). */
int bf_settled_fds(pid_t pid);
/* Two clients send req to port, read the head and the start of the body,
 * then leave: the first with a plain close, the second with a reset.
 * Asserts (CUnit) that both connected and got bytes. */
void bf_abandon_pair(uint16_t port, const char *req);
#endif
