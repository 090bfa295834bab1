/* test_extending.c — suite `extending`: docs/extending.md, followed
 * literally. Every ```sh block of the document is extracted, in order, into
 * one script run with `set -eu` in an empty temp directory, with
 * IOXIDE_SRC = this tree, PREFIX = a temp install prefix and PORT = a free
 * port. The script installs ioxide there, writes a grammar, a machine spec,
 * the actions and a Makefile, builds the server with pkg-config and
 * ioxide-gen, runs it and checks its answers. When the document and the
 * library part ways, this fails. */
#include "iox_test.h"
#include "http_client.h"
#include "resp_util.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The ```sh blocks of md, concatenated. NULL when none or unreadable. */
static char *sh_blocks(const char *md, unsigned *nblocks)
{
    FILE *f = fopen(md, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap), *line = NULL;
    size_t lcap = 0;
    int in = 0;
    *nblocks = 0;
    out[0] = 0;
    while (getline(&line, &lcap, f) >= 0) {
        if (!in && strncmp(line, "```sh", 5) == 0) { in = 1; ++*nblocks; continue; }
        if (in && strncmp(line, "```", 3) == 0) { in = 0; continue; }
        if (!in) continue;
        size_t l = strlen(line);
        if (len + l + 1 > cap) { cap = (len + l + 1) * 2; out = realloc(out, cap); }
        memcpy(out + len, line, l + 1);
        len += l;
    }
    free(line);
    fclose(f);
    return out;
}

IOX_TEST(extending, the_document_runs_as_written)
{
    char md[512];
    snprintf(md, sizeof md, "%s/docs/extending.md", iox_test_src_dir());
    unsigned n = 0;
    char *script = sh_blocks(md, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(script);
    CU_ASSERT(n >= 6);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/iox-extending-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/doc.sh", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "set -eu\n%s", script);
    fclose(f);
    free(script);
    char src[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(iox_test_src_dir(), src));
    char *out = NULL;
    int rc = ru_sh(&out,
                   "mkdir -p '%1$s/work' && cd '%1$s/work' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
                   "IOXIDE_SRC='%2$s' PREFIX='%1$s/prefix' PORT=%3$u timeout 600 bash '%1$s/doc.sh' 2>&1",
                   dir, src, (unsigned)hc_free_port());
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) fprintf(stderr, "\n  docs/extending.md failed (exit %d); its output:\n%s\n", rc, out ? out : "");
    else CU_ASSERT(out && strstr(out, "apples=1\npears=1\napples=2\nbye"));
    free(out);
    ru_sh(NULL, "rm -rf '%s'", dir);
}

/* examples/resp is a user's project too: copied out of the tree and built
 * with nothing but an install prefix (its Makefile: pkg-config and
 * ioxide-gen), then it serves redis-cli. */
IOX_TEST(extending, examples_resp_builds_out_of_tree_from_a_prefix)
{
    char src[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(iox_test_src_dir(), src));
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/iox-resp-oot-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char *out = NULL;
    unsigned port = hc_free_port();
    int rc = ru_sh(&out,
                   "set -e; cd '%1$s'; unset MAKEFLAGS MFLAGS MAKELEVEL; "
                   "make -C '%2$s' -s install PREFIX='%1$s/prefix' >/dev/null; "
                   "cp -r '%2$s/examples/resp' proj; cd proj; rm -rf build; "
                   "env -u PKG_CONFIG_PATH make -s PREFIX='%1$s/prefix' 2>&1; "
                   "ldd build/ioxide-resp 2>/dev/null | grep -c '%1$s/prefix/lib/libioxide.so' || "
                   "LD_LIBRARY_PATH='%1$s/prefix/lib' ldd build/ioxide-resp 2>/dev/null | grep -c '%1$s/prefix/lib/libioxide.so'; "
                   "LD_LIBRARY_PATH='%1$s/prefix/lib' PORT=%3$u HOST=127.0.0.1 REACTORS=2 build/ioxide-resp 2>srv.log & pid=$!; "
                   "for i in $(seq 50); do redis-cli -p %3$u PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done; "
                   "redis-cli -p %3$u SET k out-of-tree >/dev/null; redis-cli -p %3$u GET k; "
                   "kill -TERM $pid; wait $pid",
                   dir, src, port);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(out && strstr(out, "out-of-tree"));
    if (rc != 0 || !out || !strstr(out, "out-of-tree")) fprintf(stderr, "\n  exit %d: %s\n", rc, out ? out : "");
    free(out);
    ru_sh(NULL, "rm -rf '%s'", dir);
}

IOX_SUITE(extending, NULL, NULL);
