/* pg_auth.h — PostgreSQL password authentication: MD5 and SCRAM-SHA-256.
 *
 * All cryptography is OpenSSL libcrypto (EVP digests, HMAC,
 * PKCS5_PBKDF2_HMAC, RAND_bytes, base64); nothing is hand-rolled.
 *
 * SCRAM-SHA-256 (RFC 5802 / RFC 7677) client, no channel binding (gs2
 * header "n,,"; ioxide speaks to PostgreSQL without TLS, so the
 * SCRAM-SHA-256-PLUS mechanism is never chosen). Flow:
 *   iox_pg_scram_init()          → state with client nonce
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

struct iox_pg_scram {
    int state;                                   /* enum iox_pg_scram_state */
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

/* The client-first-message ("n,,n=<user>,r=<nonce>") into out[0..cap), NUL
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
