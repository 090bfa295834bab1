/* pg_auth.h — PostgreSQL password authentication: MD5 and SCRAM-SHA-256.
 *
 * All cryptography is OpenSSL libcrypto (EVP digests, HMAC,
 * PKCS5_PBKDF2_HMAC, RAND_bytes, base64); nothing is hand-rolled.
 *
 * SCRAM-SHA-256 (RFC 5802 / RFC 7677) client, with channel binding
 * (SCRAM-SHA-256-PLUS, RFC 5929's tls-server-end-point, as PostgreSQL
 * implements it) over TLS. Flow:
 *   iox_pg_scram_init()          → state with client nonce
 *   iox_pg_scram_bind()          (optional) the gs2 header: "n,," (the
 *                                default: no TLS, or binding disabled),
 *                                "y,," (we could bind, the server offered
 *                                no -PLUS) or "p=tls-server-end-point,,"
 *                                with the certificate hash
 *   iox_pg_scram_client_first()  → data for SASLInitialResponse
 *   iox_pg_scram_client_final()  ← AuthenticationSASLContinue data
 *                                → data for SASLResponse
 *   iox_pg_scram_verify_final()  ← AuthenticationSASLFinal data
 *   iox_pg_scram_clear()         wipe secrets
 * SASLprep is NOT applied: the password is used as its bytes. That is exact
 * for ASCII passwords (SASLprep maps them to themselves); a non-ASCII
 * password whose SASLprep form differs would fail to authenticate (libpq
 * itself falls back to the raw bytes when SASLprep fails).
 * PostgreSQL ignores the SCRAM user name (it uses the startup user), so
 * pass NULL or "" for user; the RFC test vector uses "user".
 */
#ifndef IOX_PG_AUTH_H
#define IOX_PG_AUTH_H
#include <stddef.h>

/* "md5" + md5hex(md5hex(password + user) + salt) into out (35 chars + NUL).
 * Returns 0, or -EIO when the digest fails. */
int iox_pg_md5_password(char out[36], const char *user, const char *password,
                        const unsigned char salt[4]);

enum iox_pg_scram_state {
    IOX_PG_SCRAM_INIT = 0, IOX_PG_SCRAM_SENT_FIRST, IOX_PG_SCRAM_SENT_FINAL,
    IOX_PG_SCRAM_DONE, IOX_PG_SCRAM_FAILED,
};

#define IOX_PG_SCRAM_MAX_MSG 512   /* cap on each SCRAM message we keep */

/* How the exchange binds the channel (the gs2 header's cbind-flag). */
enum iox_pg_scram_cbind {
    IOX_PG_CBIND_NONE = 0,     /* "n": the client does not support binding here */
    IOX_PG_CBIND_UNUSED,       /* "y": it does, but the server did not offer -PLUS */
    IOX_PG_CBIND_SERVER_END,   /* "p=tls-server-end-point": SCRAM-SHA-256-PLUS */
};

struct iox_pg_scram {
    int state;                                   /* enum iox_pg_scram_state */
    int cbind;                                   /* enum iox_pg_scram_cbind */
    unsigned char cbind_data[64];                /* the server certificate's hash (SERVER_END) */
    size_t cbind_len;
    char password[256];
    char nonce[64];                              /* client nonce (printable) */
    char client_first_bare[IOX_PG_SCRAM_MAX_MSG];
    char server_first[IOX_PG_SCRAM_MAX_MSG];
    unsigned char server_signature[32];
};

/* Set up an exchange. password: NUL-terminated, < 256 bytes. user: SCRAM
 * user name (NULL → ""; escaped per RFC 5802). nonce: NULL → 18 random
 * bytes from RAND_bytes, base64-encoded; tests inject a fixed printable
 * nonce (no ','). Returns 0, -EINVAL (bad argument, too long) or -EIO
 * (RAND_bytes failed). The password is copied into *s. */
int iox_pg_scram_init(struct iox_pg_scram *s, const char *user, const char *password,
                      const char *nonce);

/* Choose the channel binding (before client_first; the default is
 * IOX_PG_CBIND_NONE). SERVER_END needs data: the server certificate's hash
 * (pg_tls.c, pg_tls_server_end_point), 1..64 bytes. Returns 0 or -EINVAL. */
int iox_pg_scram_bind(struct iox_pg_scram *s, int cbind, const unsigned char *data, size_t len);

/* The client-first-message (gs2 header, then "n=<user>,r=<nonce>") into out[0..cap), NUL
 * terminated; *len = its length. Returns 0, -ENOSPC, -EINVAL (wrong state). */
int iox_pg_scram_client_first(struct iox_pg_scram *s, char *out, size_t cap, size_t *len);

/* Given the server-first-message (r=, s=, i=), the client-final-message
 * with proof into out (NUL terminated, *len its length). Returns 0;
 * -EPROTO when the server message is malformed, its nonce does not extend
 * ours, the salt is not base64 or the iteration count is not in
 * [1, 10,000,000]; -ENOSPC; -EINVAL (wrong state); -EIO (crypto failure). */
int iox_pg_scram_client_final(struct iox_pg_scram *s, const char *server_first, size_t n,
                              char *out, size_t cap, size_t *len);

/* Check the server-final-message "v=<signature>". Returns 0 when it
 * matches (the server knows the password), -EACCES when it does not or the
 * server sent "e=<error>", -EPROTO when malformed, -EINVAL (wrong state). */
int iox_pg_scram_verify_final(struct iox_pg_scram *s, const char *server_final, size_t n);

/* Wipe the password and keys (OPENSSL_cleanse). */
void iox_pg_scram_clear(struct iox_pg_scram *s);

#endif
