/* pg_auth.c — MD5 and SCRAM-SHA-256 client (see pg_auth.h). */
#include "pg_auth.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static void hex(char *out, const unsigned char *d, size_t n)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) { out[2 * i] = x[d[i] >> 4]; out[2 * i + 1] = x[d[i] & 15]; }
    out[2 * n] = 0;
}

static int md5(const void *a, size_t an, const void *b, size_t bn, unsigned char out[16])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_md5(), NULL) && EVP_DigestUpdate(c, a, an) &&
             EVP_DigestUpdate(c, b, bn) && EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
    return ok ? 0 : -EIO;
}

int iox_pg_md5_password(char out[36], const char *user, const char *password,
                        const unsigned char salt[4])
{
    unsigned char d[16];
    char h[33];
    if (md5(password, strlen(password), user, strlen(user), d)) return -EIO;
    hex(h, d, 16);
    if (md5(h, 32, salt, 4, d)) return -EIO;
    memcpy(out, "md5", 3);
    hex(out + 3, d, 16);
    return 0;
}

/* ---- SCRAM --------------------------------------------------------------- */

static int b64enc(char *out, size_t cap, const unsigned char *in, size_t n)
{
    if (cap < 4 * ((n + 2) / 3) + 1) return -ENOSPC;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decode strict base64 (length multiple of 4); returns bytes or -EPROTO. */
static int b64dec(unsigned char *out, size_t cap, const char *in, size_t n)
{
    if (n == 0 || n % 4 || n / 4 * 3 > cap) return -EPROTO;
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0) return -EPROTO;
    if (in[n - 1] == '=') r--;       /* EVP_DecodeBlock counts padding */
    if (in[n - 2] == '=') r--;
    return r;
}

int iox_pg_scram_init(struct iox_pg_scram *s, const char *user, const char *password,
                      const char *nonce)
{
    memset(s, 0, sizeof *s);
    if (!password || strlen(password) >= sizeof s->password) return -EINVAL;
    strcpy(s->password, password);
    if (nonce) {
        size_t n = strlen(nonce);
        if (!n || n >= sizeof s->nonce) return -EINVAL;
        for (size_t i = 0; i < n; i++)
            if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',') return -EINVAL;
        memcpy(s->nonce, nonce, n + 1);
    } else {
        unsigned char raw[18];
        if (RAND_bytes(raw, sizeof raw) != 1) return -EIO;
        b64enc(s->nonce, sizeof s->nonce, raw, sizeof raw);
    }
    /* client-first-message-bare = "n=" saslname ",r=" c-nonce; saslname
     * escapes ',' as =2C and '=' as =3D. */
    char *o = s->client_first_bare, *end = o + sizeof s->client_first_bare - 1;
    o += sprintf(o, "n=");
    for (const char *u = user ? user : ""; *u; u++) {
        const char *rep = *u == ',' ? "=2C" : *u == '=' ? "=3D" : NULL;
        size_t l = rep ? 3 : 1;
        if (o + l >= end) return -EINVAL;
        if (rep) { memcpy(o, rep, 3); o += 3; } else *o++ = *u;
    }
    if (o + 3 + strlen(s->nonce) >= end) return -EINVAL;
    sprintf(o, ",r=%s", s->nonce);
    s->state = IOX_PG_SCRAM_INIT;
    return 0;
}

int iox_pg_scram_bind(struct iox_pg_scram *s, int cbind, const unsigned char *data, size_t len)
{
    if (s->state != IOX_PG_SCRAM_INIT) return -EINVAL;
    if (cbind == IOX_PG_CBIND_SERVER_END) {
        if (!data || !len || len > sizeof s->cbind_data) return -EINVAL;
        memcpy(s->cbind_data, data, len);
        s->cbind_len = len;
    } else if (cbind != IOX_PG_CBIND_NONE && cbind != IOX_PG_CBIND_UNUSED) {
        return -EINVAL;
    }
    s->cbind = cbind;
    return 0;
}

/* The gs2 header the exchange opens with, and repeats (base64, with the
 * binding data) in the final message's c= attribute. */
static const char *gs2_header(const struct iox_pg_scram *s)
{
    return s->cbind == IOX_PG_CBIND_SERVER_END ? "p=tls-server-end-point,,"
         : s->cbind == IOX_PG_CBIND_UNUSED ? "y,," : "n,,";
}

int iox_pg_scram_client_first(struct iox_pg_scram *s, char *out, size_t cap, size_t *len)
{
    if (s->state != IOX_PG_SCRAM_INIT) return -EINVAL;
    int n = snprintf(out, cap, "%s%s", gs2_header(s), s->client_first_bare);
    if (n < 0 || (size_t)n >= cap) return -ENOSPC;
    *len = (size_t)n;
    s->state = IOX_PG_SCRAM_SENT_FIRST;
    return 0;
}

static int hmac(const unsigned char *key, size_t kn, const void *d, size_t dn, unsigned char out[32])
{
    unsigned int ol = 32;
    return HMAC(EVP_sha256(), key, (int)kn, d, dn, out, &ol) ? 0 : -EIO;
}

/* Find attribute `a` ("r", "s", "i") in a comma list: the value view. */
static int attr(const char *m, size_t n, char a, const char **v, size_t *vn)
{
    const char *p = m, *e = m + n;
    while (p < e) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        if (!c) c = e;
        if (c - p >= 2 && p[0] == a && p[1] == '=') { *v = p + 2; *vn = (size_t)(c - p - 2); return 0; }
        p = c + 1;
    }
    return -EPROTO;
}

int iox_pg_scram_client_final(struct iox_pg_scram *s, const char *sf, size_t n,
                              char *out, size_t cap, size_t *len)
{
    if (s->state != IOX_PG_SCRAM_SENT_FIRST) return -EINVAL;
    s->state = IOX_PG_SCRAM_FAILED;
    if (n >= sizeof s->server_first || memchr(sf, 0, n)) return -EPROTO;
    memcpy(s->server_first, sf, n);
    s->server_first[n] = 0;

    const char *r, *salt64, *it;
    size_t rn, sn, in;
    if (n < 2 || sf[0] != 'r' || sf[1] != '=') return -EPROTO;   /* r must come first */
    if (attr(sf, n, 'r', &r, &rn) || attr(sf, n, 's', &salt64, &sn) || attr(sf, n, 'i', &it, &in))
        return -EPROTO;
    size_t cn = strlen(s->nonce);
    if (rn <= cn || memcmp(r, s->nonce, cn) != 0) return -EPROTO;
    unsigned char salt[IOX_PG_SCRAM_MAX_MSG];
    int saltn = b64dec(salt, sizeof salt, salt64, sn);
    if (saltn <= 0) return -EPROTO;
    if (in == 0 || in > 8) return -EPROTO;
    long iter = 0;
    for (size_t i = 0; i < in; i++) {
        if (it[i] < '0' || it[i] > '9') return -EPROTO;
        iter = iter * 10 + (it[i] - '0');
    }
    if (iter < 1 || iter > 10000000) return -EPROTO;

    /* SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SP, "Client Key");
     * StoredKey = H(ClientKey); AuthMessage = cfb "," sf "," cf-without-proof;
     * ClientSignature = HMAC(StoredKey, AuthMessage); proof = CK xor CS;
     * ServerKey = HMAC(SP, "Server Key"); ServerSignature = HMAC(SK, AuthMessage). */
    unsigned char sp[32], ck[32], stk[32], cs[32], sk[32], proof[32];
    int rc = -EIO;
    /* c= is base64(gs2 header + binding data): "biws" for "n,,". */
    unsigned char cb_in[32 + sizeof s->cbind_data];
    const char *gs2 = gs2_header(s);
    size_t gl = strlen(gs2);
    memcpy(cb_in, gs2, gl);
    if (s->cbind == IOX_PG_CBIND_SERVER_END) memcpy(cb_in + gl, s->cbind_data, s->cbind_len);
    char cb64[4 * ((sizeof cb_in + 2) / 3) + 1];
    if (b64enc(cb64, sizeof cb64, cb_in, gl + (s->cbind == IOX_PG_CBIND_SERVER_END ? s->cbind_len : 0)) < 0)
        return -EPROTO;
    char without_proof[IOX_PG_SCRAM_MAX_MSG];
    int wn = snprintf(without_proof, sizeof without_proof, "c=%s,r=%.*s", cb64, (int)rn, r);
    if (wn < 0 || (size_t)wn >= sizeof without_proof) return -EPROTO;
    size_t am_cap = 3 * IOX_PG_SCRAM_MAX_MSG;
    char *am = malloc(am_cap);
    if (!am) return -ENOMEM;
    int amn = snprintf(am, am_cap, "%s,%s,%s", s->client_first_bare, s->server_first, without_proof);
    if (!PKCS5_PBKDF2_HMAC(s->password, (int)strlen(s->password), salt, saltn, (int)iter,
                           EVP_sha256(), 32, sp))
        goto out;
    if (hmac(sp, 32, "Client Key", 10, ck)) goto out;
    if (!EVP_Digest(ck, 32, stk, NULL, EVP_sha256(), NULL)) goto out;
    if (hmac(stk, 32, am, (size_t)amn, cs)) goto out;
    for (int i = 0; i < 32; i++) proof[i] = ck[i] ^ cs[i];
    if (hmac(sp, 32, "Server Key", 10, sk)) goto out;
    if (hmac(sk, 32, am, (size_t)amn, s->server_signature)) goto out;

    char p64[48];
    b64enc(p64, sizeof p64, proof, 32);
    int on = snprintf(out, cap, "%s,p=%s", without_proof, p64);
    if (on < 0 || (size_t)on >= cap) { rc = -ENOSPC; goto out; }
    *len = (size_t)on;
    s->state = IOX_PG_SCRAM_SENT_FINAL;
    rc = 0;
out:
    OPENSSL_cleanse(sp, sizeof sp); OPENSSL_cleanse(ck, sizeof ck);
    OPENSSL_cleanse(stk, sizeof stk); OPENSSL_cleanse(sk, sizeof sk);
    free(am);
    return rc;
}

int iox_pg_scram_verify_final(struct iox_pg_scram *s, const char *m, size_t n)
{
    if (s->state != IOX_PG_SCRAM_SENT_FINAL) return -EINVAL;
    s->state = IOX_PG_SCRAM_FAILED;
    if (n >= 2 && m[0] == 'e' && m[1] == '=') return -EACCES;
    const char *v; size_t vn;
    if (n < 2 || m[0] != 'v' || m[1] != '=') return -EPROTO;
    if (attr(m, n, 'v', &v, &vn)) return -EPROTO;
    unsigned char sig[48];
    int sn = b64dec(sig, sizeof sig, v, vn);
    if (sn < 0) return -EPROTO;
    if (sn != 32 || CRYPTO_memcmp(sig, s->server_signature, 32) != 0) return -EACCES;
    s->state = IOX_PG_SCRAM_DONE;
    return 0;
}

void iox_pg_scram_clear(struct iox_pg_scram *s)
{
    OPENSSL_cleanse(s, sizeof *s);
}
