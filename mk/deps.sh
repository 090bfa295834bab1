#!/usr/bin/env bash
# Dependency step used by every make target.
# Checks the Debian packages ioxide builds and tests with; installs what is
# missing when we are root and apt-get exists, otherwise prints the exact
# command and stops (exit 1). Prints nothing when all is present.
set -u
# package:probe pairs — the probe is a file (or command) the package provides.
need=(
  "liburing-dev:/usr/include/liburing.h"
  "ragel:cmd:ragel"
  "python3-jinja2:py:jinja2"
  "libcunit1-dev:/usr/include/CUnit/Basic.h"
  "libssl-dev:/usr/include/openssl/evp.h"
  "gcc:cmd:gcc"
  "make:cmd:make"
  "pkg-config:cmd:pkg-config"
)
# Extra packages for `make test` / `make bench` (postgres, clang sanitizer runtime, ...).
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  need+=(
    "postgresql:/usr/lib/postgresql/15/bin/initdb"
    "clang:cmd:clang"
    "libclang-rt-14-dev:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a"
    "graphviz:cmd:dot"
    "valgrind:cmd:valgrind"
    "spin:cmd:spin"
    "bc:cmd:bc"
    "redis-server:cmd:redis-server"
    "redis-tools:cmd:redis-cli"
  )
fi
if [ "${1:-}" = "--coverage" ]; then
  need+=(
    "postgresql:/usr/lib/postgresql/15/bin/initdb"
    "gcovr:cmd:gcovr"
  )
fi
if [ "${1:-}" = "--bench" ]; then
  need+=(
    "wrk:cmd:wrk"
    "nginx-light:/usr/sbin/nginx"
    "libh2o-evloop-dev:/usr/lib/x86_64-linux-gnu/libh2o-evloop.so"
    "libhttp-parser-dev:/usr/include/http_parser.h"
    "postgresql-contrib:/usr/lib/postgresql/15/bin/pgbench"
    "libpq-dev:/usr/include/postgresql/libpq-fe.h"
  )
fi
missing=()
for item in "${need[@]}"; do
  pkg=${item%%:*}; probe=${item#*:}
  case "$probe" in
    cmd:*) command -v "${probe#cmd:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
    py:*)  /usr/bin/python3 -c "import ${probe#py:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
    *)     [ -e "$probe" ] || missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2; then exit 0; fi
  echo "deps: apt-get failed; run by hand: $cmd" >&2
  exit 1
fi
echo "deps: missing ${missing[*]}. Install with:  sudo sh -c '$cmd'" >&2
exit 1
