/* test_install.c — suite `install`: what a user with only the installed
 * library, the generator command and the docs can do.
 *
 * `make install DESTDIR=T PREFIX=/usr` into a temp dir, then, outside the
 * tree and with nothing but that prefix: ioxide-gen --version/--help, a
 * machine generated from a spec of the user's own (and a broken spec's
 * file:line error), a C program built against the installed headers with
 * pkg-config — once on the shared library, once statically — that runs a
 * real HTTP server through the public API and answers a request; the
 * shared library exports the public API only; make uninstall leaves
 * nothing behind. */
#include "iox_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0) { va_end(ap); return -1; }
    va_end(ap);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The environment a user of the installed prefix has. */
#define USER_ENV                                                               \
    "export PATH='%1$s/usr/bin':$PATH PKG_CONFIG_PATH='%1$s/usr/lib/pkgconfig' " \
    "PKG_CONFIG_SYSROOT_DIR='%1$s' LD_LIBRARY_PATH='%1$s/usr/lib'; cd '%1$s/proj' && "

static const char spec[] =
    "[machine]\n"
    "name = \"echo_conn\"\n"
    "doc = \"a user's machine\"\n"
    "context = \"echo\"\n"
    "arg = \"echo_ev\"\n"
    "initial = \"open\"\n"
    "final = [\"done\"]\n"
    "\n"
    "[events]\n"
    "line = \"a line arrived\"\n"
    "quit = \"the peer said bye\"\n"
    "\n"
    "[actions]\n"
    "answer = \"echo it\"\n"
    "\n"
    "[states.open]\n"
    "doc = \"echoing\"\n"
    "line = \"answer\"\n"
    "quit = \"-> done\"\n"
    "\n"
    "[states.done]\n"
    "doc = \"finished\"\n";

static const char app_c[] =
    "#include <ioxide/ioxide.h>\n"
    "#include \"echo_conn_machine.h\"\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <signal.h>\n"
    "#include <unistd.h>\n"
    "struct echo { int lines; };\n"
    "struct echo_ev { int x; };\n"
    "int echo_conn_act_answer(struct echo *e, const struct echo_ev *ev) { (void)ev; e->lines++; return ECHO_CONN_EV_NONE; }\n"
    "static int hello(struct iox_conn *c, const struct iox_http_request *req, void *ctx)\n"
    "{ (void)req; (void)ctx; iox_resp_simple(c, 200, \"text/plain\", \"hello\", 5); return IOX_HANDLED; }\n"
    "static const struct iox_http_app app = {hello};\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    struct echo e = {0}; uint8_t st = ECHO_CONN_INITIAL;\n"
    "    echo_conn_fire(&e, &st, ECHO_CONN_EV_LINE, &(struct echo_ev){0});\n"
    "    echo_conn_fire(&e, &st, ECHO_CONN_EV_QUIT, &(struct echo_ev){0});\n"
    "    if (e.lines != 1 || st != ECHO_CONN_S_DONE) { fprintf(stderr, \"machine wrong\\n\"); return 3; }\n"
    "    if (argc > 1) { alarm(1); signal(SIGALRM, SIG_DFL); }\n"
    "    (void)argv;\n"
    "    return iox_http_serve(&app, NULL);\n"
    "}\n";

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(data, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int install_init(void)
{
    snprintf(root, sizeof root, "/tmp/iox-install-XXXXXX");
    if (!mkdtemp(root)) return -1;
    if (sh("cd '%s' && make -s --no-print-directory install DESTDIR='%s' PREFIX=/usr >'%s/install.log' 2>&1",
           iox_test_src_dir(), root, root) != 0) {
        sh("tail -30 '%s/install.log' >&2", root);
        return -1;
    }
    char p[128];
    snprintf(p, sizeof p, "%s/proj", root);
    if (mkdir(p, 0755) < 0) return -1;
    snprintf(p, sizeof p, "%s/proj/echo.toml", root);
    if (write_file(p, spec) < 0) return -1;
    snprintf(p, sizeof p, "%s/proj/t.rl", root);
    if (write_file(p, "%%{\n machine t;\n action e_bare_cr {}\n include http11_common \"http11_common.rl\";\n main := token CRLF;\n}%%\n%% write data;\n") < 0)
        return -1;
    snprintf(p, sizeof p, "%s/proj/app.c", root);
    return write_file(p, app_c);
}

static int install_clean(void)
{
    /* IOX_KEEP=1: leave the prefix and the project for a look. */
    if (getenv("IOX_KEEP")) { fprintf(stderr, "\n  install: kept %s\n", root); return 0; }
    sh("rm -rf '%s'", root);
    return 0;
}

IOX_TEST(install, files_in_place)
{
    static const char *const files[] = {
        "usr/lib/libioxide.a", "usr/lib/libioxide.so", "usr/lib/pkgconfig/ioxide.pc",
        "usr/include/ioxide/ioxide.h", "usr/include/ioxide/reactor.h", "usr/include/ioxide/http_conn.h",
        "usr/include/ioxide/http_conn_machine.h", "usr/bin/ioxide-gen", "usr/share/ioxide/iox_gen.py", "usr/share/ioxide/iox_model.py",
        "usr/share/ioxide/templates/machine.c.j2", "usr/share/ioxide/spec/http11_request.rl",
        "usr/share/man/man1/ioxide-gen.1",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        int rc = sh("test -e '%s/%s'", root, files[i]);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc) fprintf(stderr, "\n  missing after install: %s", files[i]);
    }
    /* The soname, and no internal symbol exported. */
    CU_ASSERT_EQUAL(sh("readelf -d '%s/usr/lib/libioxide.so' | grep -q 'SONAME.*libioxide.so.0'", root), 0);
    CU_ASSERT_EQUAL(sh("nm -D --defined-only '%s/usr/lib/libioxide.so' | grep -q ' iox_http_serve@'", root), 0);
    int leaked = sh("nm -D --defined-only '%s/usr/lib/libioxide.so' | awk '{sub(/@.*/, \"\", $3); print $3}' | "
                    "grep -E '_act_|_guard_|^iox_conn_fire$|^iox_carry|^iox_out_|^pg_' >&2", root);
    CU_ASSERT_NOT_EQUAL(leaked, 0);   /* grep found nothing */
}

IOX_TEST(install, generator_command)
{
    CU_ASSERT_EQUAL(sh(USER_ENV "ioxide-gen --version | grep -q '^ioxide-gen [0-9]'", root), 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "ioxide-gen --help | grep -q 'machines --out'", root), 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "ioxide-gen machines --out gen echo.toml", root), 0);
    CU_ASSERT_EQUAL(sh("test -s '%s/proj/gen/echo_conn_machine.c'", root), 0);
    CU_ASSERT_EQUAL(sh("test -s '%s/proj/gen/echo_conn.pml'", root), 0);   /* the Promela model too */
    /* Deterministic: a second run leaves the files alone and equal. */
    CU_ASSERT_EQUAL(sh(USER_ENV "cp -r gen gen0 && ioxide-gen machines --out gen echo.toml && diff -r gen0 gen", root), 0);
    /* A broken spec: file:line, exit 1, nothing written. */
    CU_ASSERT_EQUAL(sh(USER_ENV "sed 's/quit = \"-> done\"/quit = \"-> nowhere\"/' echo.toml > bad.toml && "
                       "! ioxide-gen machines --out badgen bad.toml 2> err.txt && grep -q '^bad.toml:[0-9]*: ' err.txt && "
                       "test ! -e badgen/echo_conn_machine.c", root), 0);
    /* Ragel with the installed grammars on the include path. */
    CU_ASSERT_EQUAL(sh(USER_ENV "ioxide-gen ragel t.rl -o t.c && grep -q 't_start' t.c", root), 0);
}

/* `ioxide-gen verify`: the user's spec model-checked with the installed
 * generator and verifier (share/ioxide/verify.sh), outside the tree: the
 * spec as it is (a safety model), then with a [model] section of its own
 * (liveness too), then with a broken end-property (a failure with a trail). */
static const char user_model[] =
    "\n[model]\n"
    "bounds = { lines = 2 }\n"
    "counters = { n = 0 }\n"
    "[model.actions]\n"
    "answer = \"n++\"\n"
    "[model.at_end]\n"
    "answered = \"n <= 2\"\n"
    "[model.env.line]\n"
    "budget = \"lines\"\n"
    "[model.env.quit]\n"
    "quiet = true\n";

IOX_TEST(install, verify_command)
{
    CU_ASSERT_EQUAL(sh("test -x '%s/usr/share/ioxide/verify.sh' && test -e '%s/usr/share/ioxide/trail.py'", root, root), 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "ioxide-gen --help | grep -qF 'verify [--out DIR]'", root), 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "ioxide-gen verify --out v echo.toml > verify.txt 2>&1 && "
                       "grep -q '^verify: echo_conn *ok .*no liveness claim' verify.txt && test -d v/echo_conn", root), 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "{ cat echo.toml; printf '%%s' '%2$s'; } > m.toml && "
                       "ioxide-gen verify --out v m.toml > m.txt 2>&1 && grep -q '^verify: echo_conn *ok .*liveness [0-9]' m.txt",
                       root, user_model), 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "sed 's/n <= 2/n < 2/' m.toml > bad.toml && ! ioxide-gen verify --out v2 bad.toml > bad.txt 2>&1 && "
                       "grep -q 'FAIL' bad.txt && grep -q 'line  open.*open  / answer' bad.txt && grep -q 'completion script' bad.txt",
                       root), 0);
    if (sh("grep -q ' ok ' '%s/proj/m.txt' && grep -q FAIL '%s/proj/bad.txt'", root, root))
        (void)sh("cat '%s/proj/verify.txt' '%s/proj/m.txt' '%s/proj/bad.txt' >&2", root, root, root);
}

IOX_TEST(install, out_of_tree_program_shared_and_static)
{
    /* Built like a user's project: pkg-config and the installed generator only. */
    int rc = sh(USER_ENV "cc -std=gnu11 -O2 -Wall -Wextra -Werror $(pkg-config --cflags ioxide) -Igen "
                "app.c gen/echo_conn_machine.c -o app $(pkg-config --libs ioxide) 2>&1 >&2", root);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sh(USER_ENV "ldd ./app | grep -q libioxide.so.0", root), 0);
    rc = sh(USER_ENV "cc -std=gnu11 -O2 $(pkg-config --cflags ioxide) -Igen app.c gen/echo_conn_machine.c -o app-static "
            "-Wl,-Bstatic -lioxide -Wl,-Bdynamic -L'%1$s/usr/lib' $(pkg-config --static --libs-only-other --libs-only-l ioxide | sed 's/-lioxide//') 2>&1 >&2", root);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_NOT_EQUAL(sh(USER_ENV "ldd ./app-static | grep -q libioxide", root), 0);
    /* Both answer a real request on 127.0.0.1 (a free port from the kernel). */
    for (int i = 0; i < 2; i++) {
        rc = sh(USER_ENV "port=$(python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'); "
                "HOST=127.0.0.1 PORT=$port REACTORS=1 ./%2$s > srv.log 2>&1 & pid=$!; "
                "for t in $(seq 50); do curl -s --max-time 1 http://127.0.0.1:$port/ > out.txt && break; sleep 0.1; done; "
                "kill -TERM $pid; wait $pid; st=$?; grep -qx hello out.txt && [ $st = 0 ] || { cat srv.log >&2; false; }",
                root, i ? "app-static" : "app");
        CU_ASSERT_EQUAL(rc, 0);
    }
}

IOX_TEST(install, uninstall_leaves_nothing)
{
    char t[80];
    snprintf(t, sizeof t, "%s/u", root);
    CU_ASSERT_EQUAL(sh("cd '%s' && make -s --no-print-directory install DESTDIR='%s' PREFIX=/opt/x >/dev/null 2>&1 && "
                       "make -s --no-print-directory uninstall DESTDIR='%s' PREFIX=/opt/x >/dev/null 2>&1",
                       iox_test_src_dir(), t, t), 0);
    CU_ASSERT_EQUAL(sh("test -z \"$(find '%s' -type f -o -type l)\"", t), 0);
}

IOX_SUITE(install, install_init, install_clean);
