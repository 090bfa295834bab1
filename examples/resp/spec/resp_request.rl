# resp_request.rl — the RESP2 request grammar (Redis protocol), grammar only.
#
# Two machines, both driven by src/resp_parser.rl (the host: action bodies,
# entry points):
#
#   resp_multibulk   *<count>\r\n then <count> times $<len>\r\n<len bytes>\r\n
#   resp_inline      one inline command line (already cut at its '\n', the
#                    '\r' before it removed), split into arguments the way
#                    redis-server's sdssplitargs does: blanks separate,
#                    "double quotes" with \n \r \t \b \a \xHH \<c> escapes,
#                    'single quotes' with \' — a closing quote must be
#                    followed by a blank or the end.
#
# Redis compatibility, on purpose: a line of the multibulk framing ends at
# '\r' and the byte after it is skipped unread (redis-server looks for the
# '\r' and steps over two bytes), and the two bytes after a bulk's data are
# skipped the same way. Numbers are redis-server's string2ll: "0", or an
# optional '-' then a non-zero digit and digits; at most 20 characters.
#
# Hooks the host must define:
#   num_start num_digit         accumulate a number (overflow is the host's)
#   count_done                  the '\r' ending the multibulk count
#   dollar                      the '$' of a bulk header
#   bulk_done                   the '\r' ending a bulk length: the host
#                               checks the data is there and steps over it
#   proto_error                 any byte the framing does not allow
#   tok_end                     an inline argument ends
#   uq_char dq_char sq_char     a byte of an unquoted, "double" or 'single'
#                               quoted part of an inline argument

%%{
  machine resp_common;
  num = ( '0' | '-'? [1-9] [0-9]* ) >num_start $num_digit;
}%%

%%{
  machine resp_multibulk;
  include resp_common;
  bulk = '$' @dollar num '\r' @bulk_done;
  main := ( '*' num '\r' @count_done ( bulk )* ) $err(proto_error);
}%%

%%{
  machine resp_inline;
  ws = [ \t\n\r\v\f];
  uq = ( any - ws - ["'] ) $uq_char;
  dq = '"' ( any - '"' )* $dq_char '"';
  sq = '\'' ( any - '\'' )* $sq_char '\'';
  token = ( uq+ ( dq | sq )? | dq | sq ) %tok_end;
  main := ws* ( token ws+ )* token?;
}%%
