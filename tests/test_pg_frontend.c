/* test_pg_frontend.c — frontend message builders, byte for byte, and the
 * all-or-nothing behaviour of full buffers. */
#include "iox_test.h"
#include "pg_frontend.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void dump(const char *a, size_t n, const char *b, size_t m)
{
    fprintf(stderr, "\ngot:  "); for (size_t i = 0; i < n; i++) fprintf(stderr, "%02x ", (unsigned char)a[i]);
    fprintf(stderr, "\nwant: "); for (size_t i = 0; i < m; i++) fprintf(stderr, "%02x ", (unsigned char)b[i]);
    fprintf(stderr, "\n");
}
#define EXPECT(w, lit) do {                                                   \
        static const char e_[] = lit;                                        \
        CU_ASSERT_EQUAL((w)->len, sizeof e_ - 1);                            \
        CU_ASSERT((w)->len == sizeof e_ - 1 && memcmp((w)->buf, e_, sizeof e_ - 1) == 0); \
        if (memcmp((w)->buf, e_, (w)->len < sizeof e_ - 1 ? (w)->len : sizeof e_ - 1)) dump((w)->buf, (w)->len, e_, sizeof e_ - 1); \
        (w)->len = 0;                                                        \
    } while (0)

IOX_TEST(pg_frontend, startup)
{
    char mem[512]; struct iox_pg_wbuf w;
    iox_pg_wbuf_init_fixed(&w, mem, sizeof mem);
    CU_ASSERT_EQUAL(iox_pg_build_startup(&w, "bob", NULL, NULL, NULL), 0);
    EXPECT(&w, "\0\0\0\x12" "\0\3\0\0" "user\0bob\0" "\0");
    const char *extra[] = {"DateStyle", "ISO", NULL};
    CU_ASSERT_EQUAL(iox_pg_build_startup(&w, "u", "db", "app", extra), 0);
    EXPECT(&w, "\0\0\0\x3f" "\0\3\0\0" "user\0u\0" "database\0db\0" "application_name\0app\0"
               "DateStyle\0ISO\0" "\0");
    CU_ASSERT_EQUAL(iox_pg_build_startup(&w, "", "db", NULL, NULL), -EINVAL);
    const char *odd[] = {"x", NULL};
    CU_ASSERT_EQUAL(iox_pg_build_startup(&w, "u", NULL, NULL, odd), -EINVAL);
    CU_ASSERT_EQUAL(w.len, 0);
    CU_ASSERT_EQUAL(iox_pg_build_cancel(&w, 0x01020304, -1), 0);
    EXPECT(&w, "\0\0\0\x10" "\x04\xd2\x16\x2e" "\x01\x02\x03\x04" "\xff\xff\xff\xff");
}

IOX_TEST(pg_frontend, auth_messages)
{
    char mem[256]; struct iox_pg_wbuf w;
    iox_pg_wbuf_init_fixed(&w, mem, sizeof mem);
    CU_ASSERT_EQUAL(iox_pg_build_password(&w, "secret"), 0);
    EXPECT(&w, "p\0\0\0\x0b" "secret\0");
    CU_ASSERT_EQUAL(iox_pg_build_sasl_initial(&w, "SCRAM-SHA-256", "n,,n=,r=abc", 11), 0);
    EXPECT(&w, "p\0\0\0\x21" "SCRAM-SHA-256\0" "\0\0\0\x0b" "n,,n=,r=abc");
    CU_ASSERT_EQUAL(iox_pg_build_sasl_initial(&w, "X", NULL, 0), 0);
    EXPECT(&w, "p\0\0\0\x0a" "X\0" "\xff\xff\xff\xff");
    CU_ASSERT_EQUAL(iox_pg_build_sasl_response(&w, "c=biws", 6), 0);
    EXPECT(&w, "p\0\0\0\x0a" "c=biws");
}

IOX_TEST(pg_frontend, simple_and_extended_query)
{
    char mem[512]; struct iox_pg_wbuf w;
    iox_pg_wbuf_init_fixed(&w, mem, sizeof mem);
    CU_ASSERT_EQUAL(iox_pg_build_query(&w, "SELECT 42"), 0);
    EXPECT(&w, "Q\0\0\0\x0e" "SELECT 42\0");
    CU_ASSERT_EQUAL(iox_pg_build_parse(&w, "s1", "SELECT $1::int + 1", 1, NULL), 0);
    EXPECT(&w, "P\0\0\0\x20" "s1\0" "SELECT $1::int + 1\0" "\0\1" "\0\0\0\0");
    uint32_t oids[2] = {23, 25};
    CU_ASSERT_EQUAL(iox_pg_build_parse(&w, "", "q", 2, oids), 0);
    EXPECT(&w, "P\0\0\0\x11" "\0" "q\0" "\0\2" "\0\0\0\x17" "\0\0\0\x19");
    const char *vals[3] = {"41", NULL, ""};
    CU_ASSERT_EQUAL(iox_pg_build_bind(&w, "", "s1", 3, vals, NULL, 0), 0);
    EXPECT(&w, "B\0\0\0\x1e" "\0" "s1\0" "\0\0" "\0\3" "\0\0\0\2" "41" "\xff\xff\xff\xff"
               "\0\0\0\0" "\0\1" "\0\0");
    const char *bin[1] = {"a\0b"};
    int32_t lens[1] = {3};
    CU_ASSERT_EQUAL(iox_pg_build_bind(&w, "p", "", 1, bin, lens, 1), 0);
    EXPECT(&w, "B\0\0\0\x16" "p\0" "\0" "\0\0" "\0\1" "\0\0\0\3" "a\0b" "\0\1" "\0\1");
    CU_ASSERT_EQUAL(iox_pg_build_bind(&w, "", "", 0, NULL, NULL, 2), -EINVAL);
    CU_ASSERT_EQUAL(iox_pg_build_describe(&w, 'S', "s1"), 0);
    EXPECT(&w, "D\0\0\0\x08" "Ss1\0");
    CU_ASSERT_EQUAL(iox_pg_build_describe(&w, 'P', ""), 0);
    EXPECT(&w, "D\0\0\0\x06" "P\0");
    CU_ASSERT_EQUAL(iox_pg_build_describe(&w, 'X', ""), -EINVAL);
    CU_ASSERT_EQUAL(iox_pg_build_execute(&w, "", 0), 0);
    EXPECT(&w, "E\0\0\0\x09" "\0" "\0\0\0\0");
    CU_ASSERT_EQUAL(iox_pg_build_execute(&w, "p", 10), 0);
    EXPECT(&w, "E\0\0\0\x0a" "p\0" "\0\0\0\x0a");
    CU_ASSERT_EQUAL(iox_pg_build_close(&w, 'S', "s1"), 0);
    EXPECT(&w, "C\0\0\0\x08" "Ss1\0");
    CU_ASSERT_EQUAL(iox_pg_build_sync(&w), 0);
    EXPECT(&w, "S\0\0\0\x04");
    CU_ASSERT_EQUAL(iox_pg_build_flush(&w), 0);
    EXPECT(&w, "H\0\0\0\x04");
    CU_ASSERT_EQUAL(iox_pg_build_terminate(&w), 0);
    EXPECT(&w, "X\0\0\0\x04");
}

/* A fixed buffer: every cap from 0 to the size fails with -ENOSPC and
 * leaves the earlier bytes untouched; at the size it succeeds. */
IOX_TEST(pg_frontend, full_buffer_all_or_nothing)
{
    char mem[64];
    for (size_t cap = 0; cap <= 3 + 15; cap++) {
        struct iox_pg_wbuf w;
        iox_pg_wbuf_init_fixed(&w, mem, cap);
        int r0 = cap >= 3 ? 0 : -1;
        if (cap >= 3) { memcpy(w.buf, "abc", 3); w.len = 3; }
        int r = iox_pg_build_query(&w, "SELECT 42");
        if (cap == 18) { CU_ASSERT_EQUAL(r, 0); CU_ASSERT_EQUAL(w.len, 18); }
        else { CU_ASSERT_EQUAL(r, -ENOSPC); CU_ASSERT_EQUAL(w.len, r0 == 0 ? 3u : 0u); }
    }
}

IOX_TEST(pg_frontend, growable)
{
    struct iox_pg_wbuf w;
    iox_pg_wbuf_init_growable(&w, 4096);
    int n = 0;
    while (iox_pg_build_sync(&w) == 0) n++;
    CU_ASSERT_EQUAL(n, 4096 / 5);
    CU_ASSERT_EQUAL(w.len, (size_t)n * 5);
    CU_ASSERT_EQUAL(iox_pg_build_sync(&w), -ENOSPC);
    CU_ASSERT(memcmp(w.buf + w.len - 5, "S\0\0\0\4", 5) == 0);
    iox_pg_wbuf_free(&w);
    CU_ASSERT_PTR_NULL(w.buf);
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    iox_pg_wbuf_init_growable(&w, 4096);
    CU_ASSERT_EQUAL(iox_pg_build_query(&w, big), -ENOSPC);
    CU_ASSERT_EQUAL(w.len, 0);
    iox_pg_wbuf_free(&w);
}

IOX_SUITE(pg_frontend, NULL, NULL);
