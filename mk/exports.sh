#!/usr/bin/env bash
# mk/exports.sh OUT.map OBJ... — the shared library's version script: every
# global symbol the objects define whose name is declared in a public header
# (include/ioxide/*.h and the generated machine headers they include) is
# exported; everything else is local, so an application cannot come to
# depend on the runtime's insides.
set -euo pipefail
out=$1; shift
cd "$(dirname "$0")/.."
hdrs=(include/ioxide/*.h)
for h in $(grep -ho '"[a-z_]*_machine\.h"' include/ioxide/*.h | tr -d '"' | sort -u); do hdrs+=("generated/$h"); done
words=$(mktemp)
trap 'rm -f "$words"' EXIT
# Identifiers of the public headers (comments too: harmless, a name in a
# comment is still a public name).
# A generated header declares the machine's actions and guards too: those
# are the runtime's own implementation, never part of the API.
grep -ohE '\b[A-Za-z_][A-Za-z0-9_]*\b' "${hdrs[@]}" | grep -vE '_(act|guard)_' | sort -u >"$words"
{
  echo "IOXIDE_0 {"
  echo "  global:"
  nm -g --defined-only "$@" 2>/dev/null | awk 'NF==3 && $2 ~ /[TDBRV]/ {print $3}' | sort -u |
    grep -Fxf "$words" | sed 's/.*/    &;/'
  echo "  local: *;"
  echo "};"
} >"$out"
