/* spec/http11_request.rl — HTTP/1.1 request grammar, read as RFC 9112 and
 * RFC 9110. Grammar only: the action bodies (what to remember, limits, error
 * codes) live in the host file runtime/http/http_parser.rl, which includes this.
 *
 * Two machines:
 *   http11_request — the request head: request-line, field lines, empty line.
 *   http11_chunked — chunked transfer coding framing (RFC 9112 §7.1). Chunk
 *                    data is skipped by count in the host, which then
 *                    re-enters the machine at chunk_data_end.
 *
 * Action hooks, by naming convention:
 *   start_* / end_*  record offsets of a token (relative to request start)
 *   e_*              error actions: which IOX_HTTP_E_* a failure here means
 */

%%{
machine http11_request;
include http11_common "http11_common.rl";

# ---------------------------------------------------------------- request-line
# RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF

# The first byte starts the method; every later one is counted against the
# limit (method_byte), so the count never sees a start from before.
method = ( tchar >start_method ( tchar $method_byte )* ) %end_method $!e_method;

# RFC 3986 pieces used by the four request-target forms (RFC 9112 §3.2).
unreserved  = alnum | [\-._~];
pct_encoded = "%" xdigit xdigit;
sub_delims  = [!$&'()*+,;=];
pchar       = unreserved | pct_encoded | sub_delims | [:@];
# Printable characters RFC 3986 does not allow but that real clients send
# raw (JSON in query strings, {} in templates). Accepted; see docs/http.md.
# Controls, SP, DEL, '#', bare '%' and bytes >= 0x80 stay rejected.
lenient     = ["<>\[\\\]^`{|}];
tgt_char    = pchar | lenient;

segment       = tgt_char*;
absolute_path = ( "/" segment )+;
query         = ( tgt_char | [/?] )*;

# origin-form = absolute-path [ "?" query ]
# The path ends at the "?" (start_query) or with the target (end_target), so
# it needs no action of its own at its end.
origin_form = ( absolute_path >start_path )
              ( "?" @start_query query )?;

# absolute-form = absolute-URI (we take the hierarchical "//" authority form)
scheme        = alpha ( alpha | digit | [+\-.] )*;
uri_authority = ( unreserved | pct_encoded | sub_delims | [:@\[\]] )*;
absolute_form = ( scheme "://" uri_authority
                  ( absolute_path >start_path )?
                  ( "?" @start_query query )? ) %form_absolute;

# authority-form = uri-host ":" port (CONNECT only; checked in the host)
reg_name       = ( unreserved | pct_encoded | sub_delims )*;
ip_literal     = "[" ( xdigit | [:.] )+ "]";
authority_form = ( ( reg_name | ip_literal ) ":" digit+ ) %form_authority;

# asterisk-form = "*" (OPTIONS only; checked in the host)
asterisk_form = "*" %form_asterisk;

request_target = ( origin_form | absolute_form | authority_form | asterisk_form )
                 >start_target %end_target $!e_target;

# RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT
# Major version 1 is the only one served; another major is refused (505) once
# the whole version is seen, so "HTTP/2" followed by junk is still BAD_VERSION.
http_version = ( "HTTP/" ( "1." digit @version_minor
                         | ( digit - "1" ) "." digit @version_unsupported ) ) $!e_version;

request_line = method SP request_target SP http_version CRLF @end_request_line;

# The same request line in two parts, for a host that runs the head as three
# machines (request_start, then request_rest, then field_section) so it can
# enter the second or third one directly after a literal it recognized itself
# (e.g. "GET " or "HTTP/1.1\r\n"). Same language as request_head below.
request_start = CRLF* method SP;
request_rest  = request_target SP http_version CRLF @end_request_line;

# ---------------------------------------------------------------- field lines
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
# The fields HTTP semantics needs are recognized here, case-insensitively;
# every other name is "token minus those names", so the union stays a DFA.

n_content_length    = /content-length/i;
n_transfer_encoding = /transfer-encoding/i;
n_connection        = /connection/i;
n_host              = /host/i;
n_expect            = /expect/i;
special_names = n_content_length | n_transfer_encoding | n_connection
              | n_host | n_expect;
# other_name is exactly  token - special_names,  written as two parts so
# that names which cannot be special (first byte not one of c/t/h/e) reach a
# plain token loop after one byte; skip_name lets the host run that loop
# with a table instead of the DFA. Same language, fewer compare chains.
special_initial = [cCtThHeE];
other_name = ( tchar - special_initial ) ( tchar* >skip_name )
           | ( special_initial tchar* ) - special_names;

# Content-Length = 1*DIGIT (RFC 9110 §8.6); a comma list of equal values is
# tolerated (RFC 9112 §6.3 step 5) and checked for agreement in the host.
cl_elem  = digit+ >cl_start $cl_digit %cl_end;
cl_value = ( OWS cl_elem ( OWS "," OWS cl_elem )* OWS ) $!e_content_length;

# Transfer-Encoding = #transfer-coding (RFC 9112 §6.1, RFC 9110 §10.1.4)
te_param  = token BWS "=" BWS ( token | quoted_string );
te_coding = ( /chunked/i %te_chunked | ( token - /chunked/i ) %te_other )
            ( OWS ";" OWS te_param )*;
te_value  = ( OWS te_coding ( OWS "," OWS te_coding )* OWS ) $!e_transfer_encoding;

# Connection = #connection-option (RFC 9110 §7.6.1)
conn_option = /close/i %conn_close
            | /keep-alive/i %conn_keep
            | ( token - ( /close/i | /keep-alive/i ) );
conn_value  = ( OWS conn_option ( OWS "," OWS conn_option )* OWS ) $!e_header_value;

# Host = uri-host [ ":" port ] (RFC 9110 §7.2). The host part may not be
# empty: the target URI is http(s), and an http URI with an empty host is
# invalid (RFC 9110 §4.2.1), so "Host:", "Host: " and "Host: :80" are
# refused with 400 (RFC 9112 §3.2: an invalid Host value), as nginx does.
host_name  = ( unreserved | pct_encoded | sub_delims )+ | ip_literal;
host_port  = host_name ( ":" digit* )?;
host_value = ( OWS host_port >start_host %end_host OWS ) $!e_host;
# host_rest (on the ":"): the host may take a whole common value and its
# CRLF at once, as the DFA would; the language is unchanged.

# Expect = #expectation (RFC 9110 §10.1.1); only 100-continue means anything;
# any other expectation is answered 417 (the host: E_EXPECTATION).
expect_value = ( OWS /100-continue/i OWS ) %expect_continue
             | ( field_value - ( OWS /100-continue/i OWS ) ) %expect_other $!e_header_value;

# skip_value: the host may jump over a run of plain value bytes at once
# (they would all loop in the same state); the grammar is unchanged.
other_value = field_value >skip_value $!e_header_value;

field_line = ( n_content_length    ":" cl_value
             | n_transfer_encoding ":" te_value
             | n_connection        ":" conn_value
             | n_host              ( ":" @host_field @host_rest ) host_value
             | n_expect            ":" expect_value
             | ( other_name $!e_header_name ) ":" other_value
             ) CRLF @end_field;

# A line that starts with SP or HTAB continues the previous one (obs-fold,
# RFC 9112 §5.2): rejected. No field line starts with SP/HTAB, so the host
# names such a failure at a line start E_OBS_FOLD (see refine_error()).

field_section = field_line* CRLF @end_head;

request_head = CRLF*                     # RFC 9112 §2.2: skip empty lines
               request_line
               field_section;
}%%

%%{
machine http11_chunked;
include http11_common "http11_common.rl";

# RFC 9112 §7.1:
#   chunked-body = *chunk last-chunk trailer-section CRLF
#   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
#   last-chunk   = 1*("0") [ chunk-ext ] CRLF
chunk_size = xdigit+ $chunk_digit $!e_chunk_size;
chunk_ext  = ( BWS ";" BWS token ( BWS "=" BWS ( token | quoted_string ) )? )*
             $!e_chunk_ext;
chunk_line = chunk_size chunk_ext CRLF @end_chunk_line;

# chunk-data is skipped by count in the host; then this CRLF must follow.
chunk_data_crlf = CRLF $!e_chunk_data @end_chunk_data;

# trailer-section = *( field-line CRLF ), then the final CRLF.
trailer_field   = ( token ":" field_value CRLF ) $!e_trailer;
trailer_section = trailer_field* CRLF @end_body;
}%%
