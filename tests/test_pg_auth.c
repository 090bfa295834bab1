/* test_pg_auth.c — MD5 password hash and the SCRAM-SHA-256 client against
 * the RFC 7677 test vector, plus its rejections. */
#include "iox_test.h"
#include "pg_auth.h"
#include <errno.h>
#include <string.h>

IOX_TEST(pg_auth, md5)
{
    char out[36];
    /* md5("md5" + md5hex("pencil" + "user") ... ) computed independently:
     * python3 -c 'import hashlib;i=hashlib.md5(b"penciluser").hexdigest();
     *   print("md5"+hashlib.md5(i.encode()+bytes([1,2,3,4])).hexdigest())' */
    const unsigned char salt[4] = {1, 2, 3, 4};
    CU_ASSERT_EQUAL(iox_pg_md5_password(out, "user", "pencil", salt), 0);
    CU_ASSERT_STRING_EQUAL(out, "md54376eb6913b38f9aaff38dc7cf19ca76");
    CU_ASSERT_EQUAL(strlen(out), 35);
}

static const char *cfirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char *sfirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char *cfinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char *sfinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

IOX_TEST(pg_auth, scram_rfc7677_vector)
{
    struct iox_pg_scram s;
    char out[512]; size_t n;
    CU_ASSERT_EQUAL_FATAL(iox_pg_scram_init(&s, "user", "pencil", "rOprNGfwEbeRWgbNEkqO"), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_client_first(&s, out, sizeof out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, cfirst);
    CU_ASSERT_EQUAL(n, strlen(cfirst));
    CU_ASSERT_EQUAL(iox_pg_scram_client_final(&s, sfirst, strlen(sfirst), out, sizeof out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, cfinal);
    CU_ASSERT_EQUAL(iox_pg_scram_verify_final(&s, sfinal, strlen(sfinal)), 0);
    CU_ASSERT_EQUAL(s.state, IOX_PG_SCRAM_DONE);
    iox_pg_scram_clear(&s);
}

IOX_TEST(pg_auth, scram_rejections)
{
    struct iox_pg_scram s;
    char out[512]; size_t n;
    /* wrong server signature */
    iox_pg_scram_init(&s, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    iox_pg_scram_client_first(&s, out, sizeof out, &n);
    CU_ASSERT_EQUAL(iox_pg_scram_client_final(&s, sfirst, strlen(sfirst), out, sizeof out, &n), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_verify_final(&s, "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 46), -EACCES);
    /* server error */
    iox_pg_scram_init(&s, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    iox_pg_scram_client_first(&s, out, sizeof out, &n);
    iox_pg_scram_client_final(&s, sfirst, strlen(sfirst), out, sizeof out, &n);
    CU_ASSERT_EQUAL(iox_pg_scram_verify_final(&s, "e=invalid-proof", 15), -EACCES);
    /* calls out of order */
    iox_pg_scram_init(&s, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    CU_ASSERT_EQUAL(iox_pg_scram_verify_final(&s, sfinal, strlen(sfinal)), -EINVAL);
    CU_ASSERT_EQUAL(iox_pg_scram_client_final(&s, sfirst, strlen(sfirst), out, sizeof out, &n), -EINVAL);
    /* malformed server-first messages */
    const char *bad[] = {
        "r=OTHERNONCE,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",          /* nonce not ours */
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* not extended */
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",      /* no i */
        "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",                          /* no s */
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=!!!!,i=4096",                   /* bad base64 */
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=12a",
        "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        iox_pg_scram_init(&s, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        iox_pg_scram_client_first(&s, out, sizeof out, &n);
        CU_ASSERT_EQUAL(iox_pg_scram_client_final(&s, bad[i], strlen(bad[i]), out, sizeof out, &n), -EPROTO);
    }
    /* small output buffer */
    iox_pg_scram_init(&s, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    CU_ASSERT_EQUAL(iox_pg_scram_client_first(&s, out, 10, &n), -ENOSPC);
    /* bad injected nonce, too-long password */
    CU_ASSERT_EQUAL(iox_pg_scram_init(&s, "", "pw", "a,b"), -EINVAL);
    char longpw[300]; memset(longpw, 'x', sizeof longpw - 1); longpw[299] = 0;
    CU_ASSERT_EQUAL(iox_pg_scram_init(&s, "", longpw, NULL), -EINVAL);
}

IOX_TEST(pg_auth, scram_random_nonce_and_user_escaping)
{
    struct iox_pg_scram a, b;
    char out[512]; size_t n;
    CU_ASSERT_EQUAL(iox_pg_scram_init(&a, NULL, "pw", NULL), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_init(&b, NULL, "pw", NULL), 0);
    CU_ASSERT_EQUAL(strlen(a.nonce), 24);
    CU_ASSERT(strcmp(a.nonce, b.nonce) != 0);
    CU_ASSERT_EQUAL(iox_pg_scram_client_first(&a, out, sizeof out, &n), 0);
    CU_ASSERT(strncmp(out, "n,,n=,r=", 8) == 0);
    CU_ASSERT_EQUAL(iox_pg_scram_init(&a, "a,b=c", "pw", "xyz"), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_client_first(&a, out, sizeof out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, "n,,n=a=2Cb=3Dc,r=xyz");
}

IOX_SUITE(pg_auth, NULL, NULL);
