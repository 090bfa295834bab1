/* pg_frontend.h — builders for PostgreSQL frontend (client → server)
 * messages, protocol 3.0, appended to a byte buffer.
 *
 * struct iox_pg_wbuf is the output buffer. Two modes:
 *  - fixed:    caller memory (iox_pg_wbuf_init_fixed); never reallocated.
 *  - growable: heap memory (iox_pg_wbuf_init_growable) that doubles on
 *              demand up to `max` bytes; freed with iox_pg_wbuf_free.
 * Every builder is all-or-nothing: it returns 0 and appends one whole
 * message, or returns -ENOSPC (the buffer would pass its cap/max),
 * -ENOMEM (growth failed) or -EINVAL (bad argument) and leaves the buffer
 * exactly as it was. String arguments are NUL-terminated C strings and are
 * copied; nothing is retained after the call.
 */
#ifndef IOX_PG_FRONTEND_H
#define IOX_PG_FRONTEND_H
#include <stddef.h>
#include <stdint.h>

struct iox_pg_wbuf {
    char *buf;
    size_t len;     /* bytes written */
    size_t cap;     /* bytes allocated */
    size_t max;     /* growable: upper bound on cap; 0: fixed buffer */
};

/* Wrap caller memory [mem, mem+cap). The caller owns mem. */
void iox_pg_wbuf_init_fixed(struct iox_pg_wbuf *w, char *mem, size_t cap);
/* Start an empty heap buffer that may grow to max bytes (max > 0). */
void iox_pg_wbuf_init_growable(struct iox_pg_wbuf *w, size_t max);
/* Free a growable buffer's memory (no-op for fixed ones) and empty it. */
void iox_pg_wbuf_free(struct iox_pg_wbuf *w);

/* Append n raw bytes (already-built messages). 0, -ENOSPC or -ENOMEM; the
 * buffer is unchanged on failure. */
int iox_pg_wbuf_append(struct iox_pg_wbuf *w, const void *data, size_t n);

#define IOX_PG_PROTOCOL_3_0 196608u   /* 3 << 16 */

/* StartupMessage (no type byte): protocol 3.0, then "user", "database"
 * (omitted when NULL or empty: the server then uses the user name),
 * "application_name" (omitted when NULL/empty), then the extra pairs
 * name0, value0, name1, value1, ..., NULL (extra may be NULL). user is
 * required (-EINVAL when NULL or empty). */
int iox_pg_build_startup(struct iox_pg_wbuf *w, const char *user, const char *database,
                         const char *application_name, const char *const *extra);

/* CancelRequest (no type byte): backend pid and secret key from BackendKeyData. */
int iox_pg_build_cancel(struct iox_pg_wbuf *w, int32_t pid, int32_t secret);

/* PasswordMessage 'p': a cleartext password or the MD5 string from
 * iox_pg_md5_password(). */
int iox_pg_build_password(struct iox_pg_wbuf *w, const char *password);

/* SASLInitialResponse 'p': mechanism name and the client-first data
 * (data NULL: length -1, "no initial response"). */
int iox_pg_build_sasl_initial(struct iox_pg_wbuf *w, const char *mechanism,
                              const char *data, size_t len);

/* SASLResponse 'p': the data as is (no length prefix of its own). */
int iox_pg_build_sasl_response(struct iox_pg_wbuf *w, const char *data, size_t len);

/* Query 'Q': simple query, may hold several statements. */
int iox_pg_build_query(struct iox_pg_wbuf *w, const char *sql);

/* Parse 'P': statement name ("" = unnamed), the SQL, and nparams type OIDs
 * (oids NULL: all 0, the server infers the types). */
int iox_pg_build_parse(struct iox_pg_wbuf *w, const char *stmt, const char *sql,
                       uint16_t nparams, const uint32_t *oids);

/* Bind 'B': portal and statement names ("" = unnamed), nparams parameters
 * in text format: values[i] NULL is SQL NULL; lengths NULL means strlen of
 * each value, else lengths[i] bytes (values may then hold NULs). All result
 * columns use result_format (0 text, 1 binary). */
int iox_pg_build_bind(struct iox_pg_wbuf *w, const char *portal, const char *stmt,
                      uint16_t nparams, const char *const *values,
                      const int32_t *lengths, int16_t result_format);

/* Describe 'D' / Close 'C': kind 'S' (statement) or 'P' (portal), name. */
int iox_pg_build_describe(struct iox_pg_wbuf *w, char kind, const char *name);
int iox_pg_build_close(struct iox_pg_wbuf *w, char kind, const char *name);

/* Execute 'E': portal, max_rows (0 = all). */
int iox_pg_build_execute(struct iox_pg_wbuf *w, const char *portal, uint32_t max_rows);

/* Sync 'S', Flush 'H', Terminate 'X': type byte and length 4. */
int iox_pg_build_sync(struct iox_pg_wbuf *w);
int iox_pg_build_flush(struct iox_pg_wbuf *w);
int iox_pg_build_terminate(struct iox_pg_wbuf *w);

#endif
