/* spec/http11_common.rl — RFC 5234 / RFC 9110 §5.6 building blocks shared by
 * the request-head grammar and the chunked-body grammar. Grammar only: no C. */
%%{
machine http11_common;

# RFC 5234 B.1 core rules
CR    = "\r";
LF    = "\n";
SP    = " ";
HTAB  = "\t";
VCHAR = 0x21..0x7e;

# RFC 9110 §5.5, §5.6
obs_text = 0x80..0xff;
tchar    = alnum | [!#$%&'*+\-.^_`|~];
token    = tchar+;
OWS      = ( SP | HTAB )*;
BWS      = OWS;
qdtext        = HTAB | SP | 0x21 | 0x23..0x5b | 0x5d..0x7e | obs_text;
quoted_pair   = "\\" ( HTAB | SP | VCHAR | obs_text );
quoted_string = '"' ( qdtext | quoted_pair )* '"';

# Line ending: CR must be followed by LF. A CR followed by anything else is
# a bare CR (the error action sits on the state between CR and LF). A bare LF
# is caught by the host: the grammar never accepts LF without CR.
CRLF = CR ( LF >!e_bare_cr );

# RFC 9110 §5.5: field-value is field-vchar / SP / HTAB. Leading and trailing
# OWS are part of the scanned bytes and trimmed by whoever reads the value.
field_vchar = VCHAR | obs_text;
field_value = ( field_vchar | SP | HTAB )*;
}%%
