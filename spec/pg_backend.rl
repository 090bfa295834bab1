# pg_backend.rl — PostgreSQL backend (server → client) messages, protocol 3.0.
#
# Grammar only: every action is a named hook whose body lives in the host
# file (runtime/pg/pg_parser.rl). The grammar is the specification; it follows
# "Message Formats" in the PostgreSQL manual (protocol-message-formats.html).
#
# Shape of every message:   Byte1(type) Int32(length) contents
#   length counts itself and the contents, not the type byte.
#
# Host contract (how the hooks make the grammar exact):
#  - int_start/int_byte accumulate big-endian Int16/Int32 values.
#  - frame  runs on the last length byte: it rejects length < 4 or over the
#           cap, returns NEED_MORE when the message is not wholly in the
#           buffer, and otherwise shrinks the end of input to the end of this
#           message. So contents that end early run into the end of input
#           (truncated), and contents that finish early leave bytes behind
#           (length inconsistent with contents).
#  - done   marks the message complete and stops the machine.
#  - Counted repetitions (columns, fields, OIDs) are counted by the count
#           hooks, which jump into the *_loop machines below; the per-item
#           hook stops the machine after the last item. Byn values (column
#           data) are skipped by the hook, bounds-checked against the message
#           end — Ragel cannot count bytes, the hook can.
#
# Limits live here with the grammar: the length cap (default 1 GiB) is
# enforced by frame; counts are Int16 and must be >= 0; a column length must
# be >= -1 (-1 is NULL).

%%{
  machine pg_backend;

  # ---- scalars -------------------------------------------------------------
  int32   = any{4} >int_start $int_byte;
  int16   = any{2} >int_start $int_byte;
  # String: bytes up to a NUL terminator (the terminator is required).
  cstring = ( [^\0]* 0 ) >str_start @str_end;

  length  = int32 @frame;

  # ---- Authentication ('R'): Int32 code selects the request ----------------
  auth_ok        = 0 0 0 0   @auth_ok;
  auth_kerberos  = 0 0 0 2   @auth_unsupported;
  auth_cleartext = 0 0 0 3   @auth_cleartext;
  auth_md5       = 0 0 0 5   @auth_md5   any{4} >salt;
  auth_gss       = 0 0 0 7   @auth_unsupported;
  auth_gss_cont  = 0 0 0 8   @auth_unsupported @rest;
  auth_sspi      = 0 0 0 9   @auth_unsupported;
  # SASL: list of mechanism names, each a non-empty String, then an empty one.
  sasl_mech      = ( ^0 [^\0]* 0 );
  auth_sasl      = 0 0 0 10  @auth_sasl  ( sasl_mech* 0 ) >mechs_start @mechs_end;
  # SASLContinue / SASLFinal: the rest of the message is mechanism data.
  auth_sasl_cont = 0 0 0 11  @auth_sasl_continue @rest;
  auth_sasl_fin  = 0 0 0 12  @auth_sasl_final    @rest;

  authentication = 'R' length ( auth_ok | auth_kerberos | auth_cleartext
                              | auth_md5 | auth_gss | auth_gss_cont | auth_sspi
                              | auth_sasl | auth_sasl_cont | auth_sasl_fin );

  # ---- session state -------------------------------------------------------
  parameter_status = 'S' length cstring @ps_name cstring @ps_value;
  backend_key_data = 'K' length int32 @key_pid int32 @key_secret;
  # Transaction status: Idle, in Transaction block, failed transaction (Error).
  ready_for_query  = 'Z' length [ITE] @rfq_status;

  # ---- query results -------------------------------------------------------
  # RowDescription: Int16 field count, then per field: name, table OID,
  # column attribute number, type OID, type size, type modifier, format code.
  row_desc_field   = cstring int32 int16 int32 int16 int32 int16;
  row_description  = 'T' length int16 @rd_count;
  row_desc_loop   := ( row_desc_field @rd_field )+;

  # DataRow: Int16 column count, then per column Int32 length (-1: NULL)
  # followed by that many bytes (skipped by dr_column).
  data_row         = 'D' length int16 @dr_count;
  data_row_loop   := ( int32 @dr_column )+;

  command_complete = 'C' length cstring @cc_tag;
  empty_query      = 'I' length;

  # ErrorResponse / NoticeResponse: (Byte1 field code, String value)*, then a
  # zero byte. Unknown codes are accepted and ignored (the manual asks
  # frontends to, so servers may add codes).
  notice_field     = ( ^0 @field_code ) ( [^\0]* 0 ) >str_start @str_end @field_value;
  error_response   = 'E' length notice_field* 0;
  notice_response  = 'N' length notice_field* 0;

  # ---- extended query ------------------------------------------------------
  parse_complete   = '1' length;
  bind_complete    = '2' length;
  close_complete   = '3' length;
  no_data          = 'n' length;
  portal_suspended = 's' length;
  # ParameterDescription: Int16 count, then one Int32 type OID per parameter.
  param_desc       = 't' length int16 @pd_count;
  param_desc_loop := ( int32 @pd_oid )+;

  # ---- asynchronous --------------------------------------------------------
  notification     = 'A' length int32 @nf_pid cstring @nf_channel cstring @nf_payload;

  # Messages whose grammar ends on their last byte are complete there; the
  # counted ones (T, D, t) complete in their count/item hooks.
  message = ( authentication | parameter_status | backend_key_data
            | ready_for_query | command_complete | empty_query
            | error_response | notice_response | parse_complete
            | bind_complete | close_complete | no_data | portal_suspended
            | notification ) @done
          | row_description | data_row | param_desc;

  main := message;
}%%
