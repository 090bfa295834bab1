/* test_pg_auth.c — MD5 password hash and the SCRAM-SHA-256 client against
 * the RFC 7677 test vector, plus its rejections. */
#include "iox_test.h"
#include "pg_auth.h"
#include <errno.h>
#include <string.h>
#include <openssl/evp.h>

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

/* The gs2 header and c= of each binding: "n,," → biws, "y,," → eSws,
 * "p=tls-server-end-point,," + the certificate hash. */
IOX_TEST(pg_auth, scram_channel_binding_headers)
{
    struct iox_pg_scram s;
    char out[512]; size_t n;
    const char *sf = "r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=4096";
    CU_ASSERT_EQUAL_FATAL(iox_pg_scram_init(&s, NULL, "pw", "abcdef"), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_bind(&s, IOX_PG_CBIND_UNUSED, NULL, 0), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_client_first(&s, out, sizeof out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, "y,,n=,r=abcdef");
    CU_ASSERT_EQUAL(iox_pg_scram_client_final(&s, sf, strlen(sf), out, sizeof out, &n), 0);
    CU_ASSERT_NSTRING_EQUAL(out, "c=eSws,r=abcdefXYZ,p=", 21);
    iox_pg_scram_clear(&s);

    unsigned char h[32];
    for (int i = 0; i < 32; i++) h[i] = (unsigned char)i;
    CU_ASSERT_EQUAL_FATAL(iox_pg_scram_init(&s, NULL, "pw", "abcdef"), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_bind(&s, IOX_PG_CBIND_SERVER_END, NULL, 0), -EINVAL);
    CU_ASSERT_EQUAL(iox_pg_scram_bind(&s, IOX_PG_CBIND_SERVER_END, h, sizeof h), 0);
    CU_ASSERT_EQUAL(iox_pg_scram_client_first(&s, out, sizeof out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, "p=tls-server-end-point,,n=,r=abcdef");
    CU_ASSERT_EQUAL(iox_pg_scram_bind(&s, IOX_PG_CBIND_NONE, NULL, 0), -EINVAL);   /* too late */
    CU_ASSERT_EQUAL(iox_pg_scram_client_final(&s, sf, strlen(sf), out, sizeof out, &n), 0);
    /* base64("p=tls-server-end-point,," 00 01 .. 1f) */
    unsigned char raw[24 + 32];
    memcpy(raw, "p=tls-server-end-point,,", 24);
    memcpy(raw + 24, h, 32);
    char want[128] = "c=";
    EVP_EncodeBlock((unsigned char *)want + 2, raw, sizeof raw);
    strcat(want, ",r=abcdefXYZ,p=");
    CU_ASSERT_NSTRING_EQUAL(out, want, strlen(want));
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
