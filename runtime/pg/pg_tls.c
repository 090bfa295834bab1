/* pg_tls.c — TLS for pg sessions on memory BIOs (see pg_internal.h).
 *
 * The ring does all socket I/O: a recv brings ciphertext into c->tin, it is
 * written into bio_in and SSL_read decrypts into the read buffer; SSL_write
 * encrypts the turn's output into bio_out, which is moved to c->tx and sent.
 * OpenSSL never sees the socket, so nothing here can block the reactor.
 * Checks as libpq does them: verify-ca and verify-full verify the chain
 * against sslrootcert (default ~/.postgresql/root.crt, which must exist),
 * require verifies only when that file exists, verify-full also checks the
 * host name (SAN, else CN) or the IP address; SNI is sent for host names
 * when sslsni=1. */
#include "pg_internal.h"
#include "pg_pgfiles.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static const char *const mode_name[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

static void ssl_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (!e) { snprintf(buf, cap, "no detail from OpenSSL"); return; }
    ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
}

/* "~/.postgresql/<name>" as libpq finds it. */
static void default_path(char *out, size_t cap, const char *name)
{
    char home[3072];
    if (iox_pg_home_dir(home, sizeof home) == 0) snprintf(out, cap, "%s/.postgresql/%s", home, name);
    else out[0] = 0;
}

static int exists(const char *path)
{
    struct stat st;
    return path[0] && stat(path, &st) == 0;
}

/* Keeps the server certificate's CN for the message (the failed session
 * has no peer certificate to ask for afterwards); decides nothing. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct iox_pg_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    if (c && cert && X509_STORE_CTX_get_error_depth(x) == 0 &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, c->tls_peer, sizeof c->tls_peer) < 0)
        snprintf(c->tls_peer, sizeof c->tls_peer, "?");
    return ok;
}

int pg_tls_ctx_open(struct iox_pg_pool *p, char *err, size_t errlen)
{
    const struct iox_pg_conninfo *ci = &p->ci;
    int tcp = 0;
    for (unsigned i = 0; i < ci->nhosts; i++) tcp |= p->sa[i].ss_family != AF_UNIX;
    if (ci->sslmode < IOX_PG_SSL_ALLOW || !tcp) return 0;    /* libpq: no TLS on Unix sockets; allow: the retry's */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char why[256], path[4096];
    if (!ctx) { ssl_errstr(why, sizeof why); snprintf(err, errlen, "TLS: cannot create a context: %s", why); return -ENOMEM; }
    static const int versions[] = {0, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    if ((ci->ssl_min && !SSL_CTX_set_min_proto_version(ctx, versions[ci->ssl_min])) ||
        (ci->ssl_max && !SSL_CTX_set_max_proto_version(ctx, versions[ci->ssl_max]))) {
        ssl_errstr(why, sizeof why);
        snprintf(err, errlen, "TLS: cannot set the protocol versions: %s", why);
        goto bad;
    }
    int verify = 0;
    if (ci->sslroot_system) {
        if (!SSL_CTX_set_default_verify_paths(ctx)) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errlen, "sslrootcert=system: cannot load the system's trusted roots: %s", why);
            goto bad;
        }
        verify = 1;
    } else {
        if (ci->sslrootcert[0]) snprintf(path, sizeof path, "%s", ci->sslrootcert);
        else default_path(path, sizeof path, "root.crt");
        if (exists(path)) {
            if (!SSL_CTX_load_verify_locations(ctx, path, NULL)) {
                ssl_errstr(why, sizeof why);
                snprintf(err, errlen, "could not read root certificate file \"%s\": %s", path, why);
                goto bad;
            }
            verify = 1;     /* libpq: with a root certificate, require verifies the chain too */
        } else if (ci->sslmode >= IOX_PG_SSL_VERIFY_CA) {
            snprintf(err, errlen, "root certificate file \"%s\" does not exist (sslmode=%s); either provide the file "
                     "(sslrootcert=), use the system's trusted roots with sslrootcert=system, or change sslmode to "
                     "disable server certificate verification", path, mode_name[ci->sslmode]);
            goto bad;
        }
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, verify ? verify_cb : NULL);
    /* The client certificate: sslcert, else ~/.postgresql/postgresql.crt if it exists. */
    if (ci->sslcert[0]) snprintf(path, sizeof path, "%s", ci->sslcert);
    else default_path(path, sizeof path, "postgresql.crt");
    if (exists(path)) {
        if (!SSL_CTX_use_certificate_chain_file(ctx, path)) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errlen, "could not load the client certificate file \"%s\": %s", path, why);
            goto bad;
        }
        char key[4096];
        if (ci->sslkey[0]) snprintf(key, sizeof key, "%s", ci->sslkey);
        else default_path(key, sizeof key, "postgresql.key");
        struct stat st;
        if (stat(key, &st) != 0) {
            snprintf(err, errlen, "certificate present, but not private key file \"%s\"", key);
            goto bad;
        }
        /* libpq: 0600 or less, or 0640 or less when owned by root. */
        if ((st.st_uid != 0 && (st.st_mode & 077)) || (st.st_uid == 0 && (st.st_mode & 037))) {
            snprintf(err, errlen, "private key file \"%s\" has group or world access; file must have permissions "
                     "u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if "
                     "owned by root", key);
            goto bad;
        }
        if (!SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) || !SSL_CTX_check_private_key(ctx)) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errlen, "could not load the private key file \"%s\": %s", key, why);
            goto bad;
        }
    }
    p->ssl_ctx = ctx;
    return 0;
bad:
    SSL_CTX_free(ctx);
    return -EINVAL;
}

void pg_tls_ctx_close(struct iox_pg_pool *p)
{
    if (p->ssl_ctx) SSL_CTX_free(p->ssl_ctx);
    p->ssl_ctx = NULL;
}

/* The reason a TLS step failed, as one line. */
static void tls_fail(struct iox_pg_conn *c, const char *step)
{
    const struct iox_pg_conninfo *ci = &c->pool->ci;
    char msg[PG_ERRMSG], why[200];
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        snprintf(msg, sizeof msg, "TLS: server certificate for \"%.60s\" does not match host name \"%.100s\" "
                 "(sslmode=verify-full)", c->tls_peer[0] ? c->tls_peer : "?", ci->hosts[c->host].host);
        ERR_clear_error();
    } else if (vr != X509_V_OK) {
        snprintf(msg, sizeof msg, "TLS: the server's certificate is not accepted (sslmode=%s): %s",
                 mode_name[ci->sslmode], X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else {
        ssl_errstr(why, sizeof why);
        snprintf(msg, sizeof msg, "TLS: %s failed: %s", step, why);
    }
    pg_conn_set_fail(c, -EPROTO, msg);
}

int pg_tls_begin(struct iox_pg_conn *c)
{
    const struct iox_pg_conninfo *ci = &c->pool->ci;
    if (!c->tin && !(c->tin = malloc(PG_TLS_IN))) { pg_conn_set_fail(c, -ENOMEM, "TLS: out of memory"); return -1; }
    if (!c->tx.cap && !c->tx.buf) iox_pg_wbuf_init_growable(&c->tx, 1u << 30);
    c->tx.len = 0;
    SSL *ssl = SSL_new(c->pool->ssl_ctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (!ssl || !in || !out) {
        SSL_free(ssl); BIO_free(in); BIO_free(out);
        pg_conn_set_fail(c, -ENOMEM, "TLS: out of memory");
        return -1;
    }
    BIO_set_mem_eof_return(in, -1);     /* empty means "wait for more", not EOF */
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    SSL_set_app_data(ssl, c);
    c->tls_peer[0] = 0;
    c->ssl = ssl;
    c->bio_in = in;
    c->bio_out = out;
    c->tls = 1;
    c->tls_up = 0;
    unsigned char ip[16];
    const char *host = ci->hosts[c->host].host;       /* the host of this attempt */
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (ci->sslsni && !is_ip && !SSL_set_tlsext_host_name(ssl, host)) { tls_fail(c, "setting SNI"); return -1; }
    if (ci->sslmode == IOX_PG_SSL_VERIFY_FULL) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host);
        if (!ok) { tls_fail(c, "setting the host to verify"); return -1; }
    }
    return pg_tls_handshake(c);
}

int pg_tls_server_end_point(struct iox_pg_conn *c, unsigned char *out, size_t cap, char *msg, size_t msg_cap)
{
    X509 *cert = c->ssl ? SSL_get1_peer_certificate(c->ssl) : NULL;
    if (!cert) { snprintf(msg, msg_cap, "the server sent no certificate to bind the channel to"); return -1; }
    int algo = NID_undef, rc = -1;
    const EVP_MD *md = NULL;
    if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &algo, NULL)) {
        snprintf(msg, msg_cap, "the server certificate's signature algorithm is unknown: no channel binding");
    } else {
        md = algo == NID_md5 || algo == NID_sha1 ? EVP_sha256() : EVP_get_digestbynid(algo);
        if (!md) snprintf(msg, msg_cap, "the server certificate's signature (%s) has no digest for channel binding",
                          OBJ_nid2sn(algo));
    }
    unsigned int n = 0;
    if (md && (size_t)EVP_MD_size(md) <= cap && X509_digest(cert, md, out, &n)) rc = (int)n;
    else if (md) snprintf(msg, msg_cap, "hashing the server certificate for channel binding failed");
    X509_free(cert);
    return rc;
}

int pg_tls_handshake(struct iox_pg_conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) { c->tls_up = 1; return 1; }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return 0;
    tls_fail(c, "handshake");
    return -1;
}

int pg_tls_received(struct iox_pg_conn *c, uint32_t n)
{
    if (BIO_write(c->bio_in, c->tin, (int)n) != (int)n) { pg_conn_set_fail(c, -ENOMEM, "TLS: out of memory"); return -1; }
    if (!c->tls_up) return 0;
    /* pg_conn_arm_recv keeps 2 * PG_TLS_IN free: what one recv completes
     * (a partial record before it, the bytes of this one) always fits. */
    uint32_t start = c->rlen;
    while (c->rcap > c->rlen) {
        int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
        if (r > 0) { c->rlen += (uint32_t)r; continue; }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) return 0;
        /* The close_notify can come in the same recv as the last records
         * before it — PostgreSQL's FATAL ErrorResponse (a pg_hba refusal,
         * which sslmode=prefer answers by retrying in plaintext). Those
         * bytes are parsed first; the TCP EOF that follows the alert ends
         * the session. Only a close with nothing before it fails here. */
        if (e == SSL_ERROR_ZERO_RETURN && c->rlen > start) return 0;
        if (e == SSL_ERROR_ZERO_RETURN) { pg_conn_set_fail(c, -ECONNRESET, "the server closed the TLS session"); return -1; }
        tls_fail(c, "read");
        return -1;
    }
    return 0;
}

int pg_tls_seal(struct iox_pg_conn *c, const char *data, size_t n)
{
    if (n && SSL_write(c->ssl, data, (int)n) != (int)n) { tls_fail(c, "write"); return -1; }
    char *ptr;
    long len = BIO_get_mem_data(c->bio_out, &ptr);
    c->tx.len = 0;
    if (len > 0) {
        int rc = iox_pg_wbuf_append(&c->tx, ptr, (size_t)len);
        if (rc < 0) { pg_conn_set_fail(c, rc, "TLS: the output does not fit"); return -1; }
        (void)BIO_reset(c->bio_out);
    }
    return 0;
}

int pg_tls_out_pending(const struct iox_pg_conn *c)
{
    return c->bio_out && BIO_ctrl_pending(c->bio_out) > 0;
}

void pg_tls_end(struct iox_pg_conn *c)
{
    if (c->ssl) SSL_free(c->ssl);       /* frees both BIOs */
    c->ssl = NULL;
    c->bio_in = c->bio_out = NULL;
    c->tls = c->tls_up = 0;
}
