/* ioxide/pg_parser.h — incremental, zero-copy PostgreSQL backend-message parser.
 *
 * The grammar is spec/pg_backend.rl (protocol 3.0, "Message Formats" in the
 * PostgreSQL manual); the host file runtime/pg/pg_parser.rl holds the actions,
 * and Ragel turns both into generated/pg_parser.c. This header is the API.
 *
 * Model
 *  - iox_pg_parse() is given the bytes of the connection starting at the
 *    first byte of the next message. If the message lies wholly in
 *    [buf, buf+len) it is parsed and its fields are views into buf (no copy,
 *    no allocation): they stay valid as long as those bytes do. If not, it
 *    returns IOX_PG_NEED_MORE and says how many more bytes are needed; the
 *    caller keeps the bytes (its per-connection read buffer) and calls again
 *    with them plus the new ones. Only the 5-byte header is looked at again
 *    (type byte and length are checked as soon as they arrive); contents are
 *    scanned once, when the message is complete.
 *  - Counted parts (RowDescription fields, DataRow columns, ParameterDescription
 *    OIDs, SASL mechanisms) are validated by the parse and then walked on
 *    demand with the iterators below, so the parser needs no per-column
 *    storage; iox_pg_datarow_columns() fills a caller-supplied array.
 *  - A malformed stream gives a negative IOX_PG_E_* code. The connection
 *    must then be dropped: there is no resynchronising a broken stream.
 *
 * Only the messages a client of a simple/extended-query session receives
 * are accepted; COPY, FunctionCallResponse and NegotiateProtocolVersion are
 * unknown types (IOX_PG_E_UNKNOWN_TYPE) for now.
 */
#ifndef IOX_PG_PARSER_H
#define IOX_PG_PARSER_H
#include <stddef.h>
#include <stdint.h>

/* Append-only list of error outcomes: X(name, value, reason). */
#define IOX_PG_ERRORS(X)                                                       \
    X(BAD_LENGTH,    -1, "message length below 4")                             \
    X(TOO_LARGE,     -2, "message length over the configured cap")             \
    X(UNKNOWN_TYPE,  -3, "unknown backend message type byte")                  \
    X(TRUNCATED,     -4, "contents end before the fields they announce")       \
    X(UNTERMINATED,  -5, "string field without its NUL terminator")           \
    X(TRAILING,      -6, "message length larger than its contents")            \
    X(BAD_COUNT,     -7, "negative field or column count")                     \
    X(BAD_COLUMN_LEN, -8, "column length below -1")                            \
    X(MALFORMED,     -9, "malformed message contents")

enum iox_pg_result {
    IOX_PG_NEED_MORE = 0,   /* incomplete message: *n = bytes still needed */
    IOX_PG_MSG       = 1,   /* *msg filled: *n = bytes the message used */
#define IOX_PG_X_ENUM(n, v, r) IOX_PG_E_##n = v,
    IOX_PG_ERRORS(IOX_PG_X_ENUM)
#undef IOX_PG_X_ENUM
};

/* Backend message type bytes. */
enum iox_pg_msg_type {
    IOX_PG_AUTHENTICATION   = 'R', IOX_PG_PARAMETER_STATUS = 'S',
    IOX_PG_BACKEND_KEY_DATA = 'K', IOX_PG_READY_FOR_QUERY  = 'Z',
    IOX_PG_ROW_DESCRIPTION  = 'T', IOX_PG_DATA_ROW         = 'D',
    IOX_PG_COMMAND_COMPLETE = 'C', IOX_PG_EMPTY_QUERY      = 'I',
    IOX_PG_ERROR_RESPONSE   = 'E', IOX_PG_NOTICE_RESPONSE  = 'N',
    IOX_PG_PARSE_COMPLETE   = '1', IOX_PG_BIND_COMPLETE    = '2',
    IOX_PG_CLOSE_COMPLETE   = '3', IOX_PG_NO_DATA          = 'n',
    IOX_PG_PARAM_DESCRIPTION = 't', IOX_PG_PORTAL_SUSPENDED = 's',
    IOX_PG_NOTIFICATION     = 'A',
};

/* Authentication request codes (msg->auth.code). */
enum iox_pg_auth_code {
    IOX_PG_AUTH_OK = 0, IOX_PG_AUTH_KERBEROS_V5 = 2, IOX_PG_AUTH_CLEARTEXT = 3,
    IOX_PG_AUTH_MD5 = 5, IOX_PG_AUTH_GSS = 7, IOX_PG_AUTH_GSS_CONTINUE = 8,
    IOX_PG_AUTH_SSPI = 9, IOX_PG_AUTH_SASL = 10, IOX_PG_AUTH_SASL_CONTINUE = 11,
    IOX_PG_AUTH_SASL_FINAL = 12,
};

/* A view into the parsed buffer. ptr is not NUL-terminated in general
 * (String fields are: ptr[len] == 0). For DataRow columns len == -1 is SQL
 * NULL (ptr NULL). An absent optional field has ptr NULL, len 0. */
struct iox_pg_str {
    const char *ptr;
    int32_t len;
};

/* ErrorResponse/NoticeResponse field codes, in the order of the manual. */
#define IOX_PG_NOTICE_CODES "SVCMDHPpqWstcdnFLR"
enum { IOX_PG_NOTICE_NFIELDS = 18 };

/* One parsed message. Which member of the union is set depends on type. */
struct iox_pg_msg {
    char type;            /* enum iox_pg_msg_type */
    uint32_t size;        /* whole message: type byte + length field value */
    const char *body;     /* contents after the length field */
    uint32_t body_len;
    union {
        struct {          /* 'R' */
            int32_t code;             /* enum iox_pg_auth_code */
            const char *salt;         /* MD5: 4 bytes */
            const char *data;         /* SASL: mechanism list (for the
                                         iterator); SASLContinue/Final and
                                         GSSContinue: the data */
            uint32_t data_len;
        } auth;
        struct { struct iox_pg_str name, value; } param;      /* 'S' */
        struct { int32_t pid, secret; } key;                  /* 'K' */
        struct { char status; } ready;                        /* 'Z': I T E */
        struct { struct iox_pg_str tag; } complete;           /* 'C' */
        struct {                                              /* 'T' 'D' 't' */
            uint16_t count;
            const char *items;        /* first field/column/OID */
        } list;
        struct {                                              /* 'E' 'N' */
            struct iox_pg_str f[IOX_PG_NOTICE_NFIELDS];  /* by IOX_PG_NOTICE_CODES */
        } notice;
        struct {                                              /* 'A' */
            int32_t pid;
            struct iox_pg_str channel, payload;
        } notify;
    };
};

#define IOX_PG_DEFAULT_MAX_LEN (1u << 30)

/* Parser state: small, lives in each connection. Fields are internal except
 * err_type/err_off, which describe the last error for logs. */
struct iox_pg_parser {
    uint32_t max_len;     /* cap on the length field (default 1 GiB) */
    uint32_t acc;         /* Int16/Int32 being accumulated */
    uint32_t left;        /* items left in a counted part */
    const char *mark;     /* start of the String being scanned */
    struct iox_pg_str str;/* last String scanned */
    int8_t field;         /* notice field index being scanned, -1 unknown */
    uint8_t in_str, framed, done;
    int err;              /* error set by a hook */
    size_t need;          /* NEED_MORE amount set by the frame hook */
    char err_type;        /* type byte of the message that failed */
    size_t err_off;       /* offset of the failure from the message start */
};

/* Set up a parser. max_len caps the length field (bytes, counting the
 * length itself); 0 means IOX_PG_DEFAULT_MAX_LEN. Never fails. */
void iox_pg_parser_init(struct iox_pg_parser *ps, uint32_t max_len);

/* Parse the message that starts at buf[0]. len may be 0. Returns:
 *   IOX_PG_MSG        *msg filled (views into buf); *n = msg->size, the bytes
 *                     to drop before the next call.
 *   IOX_PG_NEED_MORE  the message is not complete in [buf, buf+len); *n = the
 *                     minimum number of extra bytes needed (5 - len while the
 *                     header is incomplete). Keep the bytes and call again.
 *   IOX_PG_E_*        the stream is broken (ps->err_type / ps->err_off say
 *                     where); close the connection. *n is 0.
 * No state is kept between messages except the limit, so the same parser
 * may be reused after an error only for a new connection. */
int iox_pg_parse(struct iox_pg_parser *ps, const char *buf, size_t len,
                 struct iox_pg_msg *msg, size_t *n);

/* DataRow columns. *it starts at 0. Returns 1 and fills *col (len -1 for
 * NULL) or 0 after the last column. Only for a message iox_pg_parse
 * accepted (the walk is not re-validated). */
int iox_pg_datarow_next(const struct iox_pg_msg *m, uint32_t *it,
                        struct iox_pg_str *col);

/* All DataRow columns into cols[0..cap). Returns the column count, or
 * -ENOSPC when cap is smaller (cols then holds the first cap columns). */
int iox_pg_datarow_columns(const struct iox_pg_msg *m, struct iox_pg_str *cols,
                           size_t cap);

/* One RowDescription field. */
struct iox_pg_field_desc {
    struct iox_pg_str name;
    uint32_t table_oid;
    int16_t attnum;
    uint32_t type_oid;
    int16_t typlen;
    int32_t typmod;
    int16_t format;       /* 0 text, 1 binary */
};
/* RowDescription fields, like iox_pg_datarow_next. */
int iox_pg_rowdesc_next(const struct iox_pg_msg *m, uint32_t *it,
                        struct iox_pg_field_desc *f);

/* ParameterDescription: the type OID of parameter i (< list.count). */
uint32_t iox_pg_paramdesc_oid(const struct iox_pg_msg *m, uint16_t i);

/* AuthenticationSASL mechanism names, like iox_pg_datarow_next. */
int iox_pg_sasl_mech_next(const struct iox_pg_msg *m, uint32_t *it,
                          struct iox_pg_str *mech);
/* 1 if the AuthenticationSASL message offers mechanism `name`, else 0. */
int iox_pg_sasl_has_mech(const struct iox_pg_msg *m, const char *name);

/* ErrorResponse/NoticeResponse field by code ('M', 'C', 'S', ...): the view,
 * or NULL when the message has no such field or code is not one of
 * IOX_PG_NOTICE_CODES. */
const struct iox_pg_str *iox_pg_notice_field(const struct iox_pg_msg *m, char code);

/* Stable name ("E_TRUNCATED", "MSG") and human reason for any result. */
const char *iox_pg_result_name(int res);
const char *iox_pg_error_reason(int err);

#endif
