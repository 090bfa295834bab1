# ioxide — build, regenerate, test, run, bench.
#
#   make            build everything into build/ (library, examples, tests)
#   make run        build and start the raw playground on :8080
#   make run-pg     the playground in pg mode against a throwaway PostgreSQL
#   make test       build and run every test: normal build, then ASan+UBSan
#   make regen      re-run Ragel and the machine generator into generated/
#   make verify     model-check every generated machine with SPIN (docs/verification.md)
#   make bench      interleaved benchmark vs nginx (bench/RESULTS.md)
#   make bench-parse  HTTP parser micro-benchmark vs picohttpparser/http-parser
#   make bench-ir   callgrind instructions per request vs the minimal server (bench/ir.sh)
#
# Every target first runs mk/deps.sh, which installs missing Debian packages
# (as root) or prints the exact apt-get command and stops.

BUILD   ?= build
SAN     ?=
PYTHON  := /usr/bin/python3
CC      ?= gcc

# Public headers: include/ioxide/ (<ioxide/...>); internal ones sit beside
# their code in runtime/<layer>/.
RUNTIME_DIRS := core seam stream http pg file
RUNTIME_INC  := -Iinclude $(addprefix -Iruntime/,$(RUNTIME_DIRS)) -Igenerated
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iexamples/playground -Iexamples/lineecho \
               $(RUNTIME_INC) -Itests -MMD -MP
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer \
                 -fno-sanitize-recover=undefined
  LDFLAGS_SAN := -fsanitize=address,undefined
endif
# Coverage build (make coverage): gcov instrumentation, no optimisation so
# lines and branches map to the source; atomic counters because reactors
# are threads (racy counters go negative and gcovr refuses them).
ifeq ($(COV),1)
  CFLAGS_BASE += --coverage -fprofile-update=atomic -O0
  LDFLAGS_SAN += --coverage
endif
CFLAGS  := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS  := -luring -lssl -lcrypto -lpthread

RUNTIME_SRC := $(sort $(foreach d,$(RUNTIME_DIRS),$(wildcard runtime/$(d)/*.c)))
GEN_SRC     := $(sort $(wildcard generated/*.c))
LIB_SRC     := $(RUNTIME_SRC) $(GEN_SRC)
LIB_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB         := $(BUILD)/libioxide.a

PLAYGROUND_SRC := $(sort $(wildcard examples/playground/*.c))
PLAYGROUND_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(PLAYGROUND_SRC))
TEST_SRC    := $(sort $(wildcard tests/*.c))
TEST_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRC))
# examples/lineecho: a line protocol on the stream layer (build/lineecho);
# the tests serve it too.
LINEECHO_OBJ := $(BUILD)/obj/examples/lineecho/lineecho.o

DEPS_STAMP  := $(BUILD)/.deps-ok

.PHONY: all deps run run-pg test test-normal test-asan regen check-regen verify bench bench-ir bench-parse clean sim docs \
        install uninstall shared coverage mutants

all: $(LIB) $(BUILD)/playground $(BUILD)/lineecho $(BUILD)/tests $(BUILD)/ioxide-resp

deps:
	@mk/deps.sh

$(DEPS_STAMP): mk/deps.sh
	@mk/deps.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Ragel's output trips a few warnings we cannot fix at the source.
$(BUILD)/obj/generated/%.o: CFLAGS += -Wno-unused-const-variable -Wno-implicit-fallthrough

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/playground: $(PLAYGROUND_OBJ) $(LIB)
	$(CC) $(LDFLAGS_SAN) -o $@ $(PLAYGROUND_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/lineecho: $(LINEECHO_OBJ) $(BUILD)/obj/examples/lineecho/main.o $(LIB)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests: $(TEST_OBJ) $(LINEECHO_OBJ) $(LIB)
	$(CC) $(LDFLAGS_SAN) -o $@ $(TEST_OBJ) $(LINEECHO_OBJ) $(LIB) $(LDLIBS) -lcunit

# ---- examples/resp, built like a user's project (issue 13 §3) --------------
# Its own Makefile, with pkg-config and ioxide-gen only: here against the
# in-tree library through an uninstalled ioxide.pc, and the source tree's
# gen/ioxide-gen. Its objects go to $(BUILD)/resp; the programs are copied
# to $(BUILD)/ioxide-resp and $(BUILD)/ioxide-resp-bench-client.
ABS_BUILD := $(abspath $(BUILD))
RESP_OUT  := $(ABS_BUILD)/resp
$(BUILD)/pkgconfig/ioxide.pc: Makefile VERSION
	@mkdir -p $(dir $@)
	printf 'Name: ioxide\nDescription: ioxide, uninstalled (the source tree)\nVersion: %s\nCflags: -I%s/include -I%s/generated\nLibs: -L%s -lioxide -luring -lcrypto -lpthread\n' \
	  "$(VERSION)" "$(CURDIR)" "$(CURDIR)" "$(ABS_BUILD)" >$@

$(BUILD)/ioxide-resp: $(LIB) $(BUILD)/pkgconfig/ioxide.pc FORCE
	PKG_CONFIG_PATH=$(ABS_BUILD)/pkgconfig $(MAKE) --no-print-directory -C examples/resp OUT=$(RESP_OUT) \
	  IOXIDE_GEN=$(CURDIR)/gen/ioxide-gen CC=$(CC) CFLAGS="-O2 -g $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)" \
	  LDFLAGS="$(LDFLAGS_SAN)" EXTRA_DEPS=$(abspath $(LIB))
	@for p in ioxide-resp ioxide-resp-bench-client; do cmp -s $(RESP_OUT)/$$p $(BUILD)/$$p || \
	  { cp $(RESP_OUT)/$$p $(BUILD)/$$p.tmp && mv -f $(BUILD)/$$p.tmp $(BUILD)/$$p; } || exit 1; done

comma := ,
.PHONY: FORCE
FORCE:

# tests/test_resp_sim.c #includes the example's sources and what its
# Makefile generates (the parser, the machine).
$(BUILD)/obj/tests/test_resp_sim.o: CFLAGS += -I$(RESP_OUT)/gen -Iexamples/resp/src -Wno-unused-const-variable -Wno-implicit-fallthrough
$(BUILD)/obj/tests/test_resp_sim.o: | $(BUILD)/ioxide-resp

run: all
	PORT=$${PORT:-8080} $(BUILD)/playground

# pg mode against a throwaway PostgreSQL cluster (removed on exit).
run-pg: all
	BUILD=$(BUILD) mk/run-pg.sh

# Every fuzz target replays its corpus and regressions and fuzzes briefly;
# then the CUnit suite runs twice: the normal build, then ASan+UBSan
# (LeakSanitizer on). The run ends with CUnit's summary.
test:
	@mk/deps.sh --test
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory verify
	$(MAKE) --no-print-directory test-normal test-asan

test-normal:
	@echo "=== test: normal build ==="
	IOX_SRC_DIR=$(CURDIR) $(BUILD)/tests $(TESTS)

# The network suites in both descriptor modes (IOX_DIRECT_FDS, docs/
# architecture.md "The kernel path"): test-normal runs them in the default
# (auto: direct descriptors where the kernel has them) and suite direct_fds
# covers both; this runs the whole real-socket set once with real fds and
# once with direct descriptors required.
DIRECT_SUITES ?= playground_raw playground_echo playground_hop stream_net file_mode access_log limits stats responses
.PHONY: test-direct-modes
test-direct-modes: all
	@for m in off on; do echo "=== network suites with IOX_DIRECT_FDS=$$m ==="; \
	  IOX_DIRECT_FDS=$$m IOX_SRC_DIR=$(CURDIR) $(BUILD)/tests $(DIRECT_SUITES) || exit 1; done

test-asan:
	@echo "=== test: ASan+UBSan build ==="
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  IOX_SRC_DIR=$(CURDIR) build/asan/tests $(TESTS)

# Seeded simulation of the machines through the simulated ring.
#   make sim                 IOX_SIM_SEEDS (default 20000) schedules per machine
#   make sim SEED=1827       replay one seed exactly (in every sim suite;
#                            one suite: IOX_SEED=1827 build/tests pg_sim)
sim: all
	IOX_SIM_SEEDS=$${IOX_SIM_SEEDS:-20000} $(if $(SEED),IOX_SEED=$(SEED)) $(BUILD)/tests conn_sim pg_sim msg_sim file_sim stream_sim client_sim

regen:
	@mk/deps.sh
	mk/regen.sh generated

# SPIN over every machine's Promela model (generated/NAME.pml): safety and
# liveness, a trail as events and a completion script on failure.
verify:
	@mk/deps.sh --test
	@echo "=== verify: SPIN over generated/*.pml and the examples' specs (examples/*/spec/*.toml) ==="
	mk/verify.sh generated/*.pml $(foreach s,$(wildcard examples/*/spec/*.toml),--spec $(s))

# Plain `make` regenerates too when a grammar, a machine spec, the generator
# or a template changed since the last regeneration (build/.regen-stamp).
# Done while the Makefile is read, before any rule runs, so every object
# sees the new headers. Deterministic: a fresh tree regenerates to the same
# bytes. Skipped (with a note) while ragel or Jinja2 are not installed yet —
# mk/deps.sh installs them, and the `regen` suite checks freshness anyway.
GEN_INPUTS := $(wildcard spec/*.rl spec/machines/*.toml runtime/*/*.rl gen/iox_gen.py gen/iox_model.py gen/templates/*.j2) mk/regen.sh
ifeq ($(filter clean deps regen,$(MAKECMDGOALS)),)
_regen := $(shell if [ ! -e $(BUILD)/.regen-stamp ] || [ -n "$$(find $(GEN_INPUTS) -newer $(BUILD)/.regen-stamp 2>/dev/null | head -1)" ]; then \
  if command -v ragel >/dev/null && /usr/bin/python3 -c 'import jinja2' 2>/dev/null; then \
    echo "make: specs changed — regenerating generated/ (mk/regen.sh)" >&2; \
    mk/regen.sh generated >&2 && mkdir -p $(BUILD) && touch $(BUILD)/.regen-stamp; \
  else echo "make: not regenerating generated/ yet (ragel or python3-jinja2 missing; mk/deps.sh installs them)" >&2; fi; fi)
endif

# Diagrams of every machine for the docs (docs/machines/*.svg, from the
# generated .dot files; needs graphviz).
docs:
	@mk/deps.sh --test
	/usr/bin/python3 gen/iox_gen.py --out build/docs-gen --svg docs/machines spec/machines/*.toml

bench-parse: | $(DEPS_STAMP)
	@mk/deps.sh --bench
	$(MAKE) --no-print-directory $(BUILD)/bench_parse
	$(BUILD)/bench_parse

$(BUILD)/bench_parse: $(BUILD)/obj/bench/bench_parse.o $(LIB)
	$(CC) -o $@ $^ $(LDLIBS) -lh2o-evloop -lhttp_parser

# The libpq pipeline-mode client: the pg row's ceiling (bench/pg_pipeline.c).
$(BUILD)/pg_pipeline: bench/pg_pipeline.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -I/usr/include/postgresql -o $@ $< -lpq


# Reference servers and load tools the bench builds (bench/ref/minimal.c:
# the bare liburing baseline; bench/loadgen.c: constant-rate latency, churn
# and idle-connection memory).
$(BUILD)/minimal: bench/ref/minimal.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -luring

$(BUILD)/loadgen: bench/loadgen.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lm

# Instructions per request under callgrind (bench/ir.sh): deterministic, so
# it can be run on a busy machine, unlike `make bench`.
$(BUILD)/ir_client: bench/ir_client.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

bench-ir: $(BUILD)/playground $(BUILD)/minimal $(BUILD)/ir_client
	PLAYGROUND=$(BUILD)/playground MINIMAL=$(BUILD)/minimal IR_CLIENT=$(BUILD)/ir_client bench/ir.sh --table

bench: all $(BUILD)/minimal $(BUILD)/loadgen
	@mk/deps.sh --bench
	$(MAKE) --no-print-directory $(BUILD)/pg_pipeline
	bench/run.sh

clean:
	rm -rf build

# Line and branch coverage of runtime/ and generated/ from the CUnit suite
# (the same run `make test` does, on a gcov build in build/cov): a summary
# per file on stdout, build/coverage/index.html for reading. mk/coverage.sh.
# Every deliberate fault of tests/mutants/*.md must make the suites fail
# (mk/mutants.sh; MUTANT=name-part to run some, MUTANT_FULL=1 to judge each
# with the whole suite).
mutants:
	@mk/deps.sh --test
	mk/mutants.sh $(MUTANT)

coverage:
	@mk/deps.sh --coverage
	$(MAKE) --no-print-directory BUILD=build/cov COV=1 all
	COV_BUILD=build/cov mk/coverage.sh

# ---- install (issue 13 §1) --------------------------------------------------
#   make install [PREFIX=/usr/local] [DESTDIR=]   library (.a, .so with soname,
#       public API only), headers, pkg-config file, ioxide-gen with its
#       templates and grammars, man page; make uninstall removes them.
VERSION  := $(shell cat VERSION)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
PREFIX   ?= /usr/local
DESTDIR  ?=
PIC_OBJ  := $(patsubst %.c,$(BUILD)/pic/obj/%.o,$(LIB_SRC))
SHLIB    := $(BUILD)/libioxide.so.$(VERSION)
PUB_GEN_HDRS := $(addprefix generated/,$(sort $(shell grep -ho '"[a-z_]*_machine\.h"' include/ioxide/*.h | tr -d '"')))

$(BUILD)/pic/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(BUILD)/pic/obj/generated/%.o: CFLAGS += -Wno-unused-const-variable -Wno-implicit-fallthrough

$(BUILD)/ioxide.map: $(PIC_OBJ) mk/exports.sh $(wildcard include/ioxide/*.h)
	mk/exports.sh $@ $(PIC_OBJ)

$(SHLIB): $(PIC_OBJ) $(BUILD)/ioxide.map
	$(CC) -shared -Wl,-soname,libioxide.so.$(SOMAJOR) -Wl,--version-script=$(BUILD)/ioxide.map \
	  -Wl,--no-undefined -o $@ $(PIC_OBJ) $(LDLIBS)

shared: $(SHLIB)

# Remade on every install: it holds PREFIX, and a file left by an install
# to another prefix would point there (the extending and install suites
# install to different prefixes one after the other).
$(BUILD)/ioxide.pc: mk/ioxide.pc.in VERSION FORCE
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< >$@

install: $(LIB) $(SHLIB) $(BUILD)/ioxide.pc
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/ioxide \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/ioxide/templates $(DESTDIR)$(PREFIX)/share/ioxide/spec \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libioxide.a
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/libioxide.so.$(VERSION)
	ln -sf libioxide.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libioxide.so.$(SOMAJOR)
	ln -sf libioxide.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libioxide.so
	install -m 644 $(BUILD)/ioxide.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ioxide.pc
	install -m 644 include/ioxide/*.h $(PUB_GEN_HDRS) $(DESTDIR)$(PREFIX)/include/ioxide/
	install -m 755 gen/ioxide-gen $(DESTDIR)$(PREFIX)/bin/ioxide-gen
	install -m 644 gen/iox_gen.py gen/iox_model.py mk/trail.py VERSION $(DESTDIR)$(PREFIX)/share/ioxide/
	install -m 755 mk/verify.sh $(DESTDIR)$(PREFIX)/share/ioxide/verify.sh
	install -m 644 gen/templates/*.j2 $(DESTDIR)$(PREFIX)/share/ioxide/templates/
	install -m 644 spec/*.rl $(DESTDIR)$(PREFIX)/share/ioxide/spec/
	install -m 644 docs/ioxide-gen.1 $(DESTDIR)$(PREFIX)/share/man/man1/ioxide-gen.1
	@echo "installed ioxide $(VERSION) into $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libioxide.a $(DESTDIR)$(PREFIX)/lib/libioxide.so \
	  $(DESTDIR)$(PREFIX)/lib/libioxide.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libioxide.so.$(VERSION) \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/ioxide.pc $(DESTDIR)$(PREFIX)/bin/ioxide-gen \
	  $(DESTDIR)$(PREFIX)/share/man/man1/ioxide-gen.1
	rm -rf $(DESTDIR)$(PREFIX)/include/ioxide $(DESTDIR)$(PREFIX)/share/ioxide

# Header dependencies of every object tree, the PIC one (shared library)
# included: a header change must rebuild libioxide.so too.
-include $(shell find $(BUILD)/obj $(BUILD)/pic/obj -name '*.d' 2>/dev/null)

# ===================================================================== fuzz
# libFuzzer targets (tests/fuzz/, docs/fuzzing.md). Appended section: the
# library is rebuilt with clang and coverage instrumentation into
# $(FUZZ_DIR)/obj, apart from the gcc objects above.
#
#   make fuzz [FUZZ_SECONDS=60]  build every target, run each N seconds on a
#                                scratch copy of its corpus; fails on a crash
#   make fuzz-smoke              replay corpus + regressions, then 3 s each
#   make fuzz-build              only build build/fuzz/fuzz_*
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
                $(RUNTIME_INC) -Itests -Itests/fuzz -MMD -MP $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRC))
FUZZ_LIB     := $(FUZZ_DIR)/libioxide-fuzz.a
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
# libFuzzer flags shared by every run; the dictionary (tests/fuzz/http.dict,
# pg.dict) is picked by the target's name.
FUZZ_RUN_FLAGS := -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

.PHONY: fuzz fuzz-smoke fuzz-build
.SECONDARY: $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/obj/tests/fuzz/%.o,$(FUZZ_SRC))

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/generated/%.o: FUZZ_CFLAGS += -Wno-unused-const-variable -Wno-implicit-fallthrough

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS)

# Runs each target for FUZZ_SECONDS; new inputs go to a scratch corpus under
# build/ (the committed corpus is read, never written); crashes land in
# $(FUZZ_DIR)/crashes/<target>/.
fuzz: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes/$$t; \
	  case $$t in *pg*) d=tests/fuzz/pg.dict;; *http*) d=tests/fuzz/http.dict;; *) d=tests/fuzz/$$t.dict;; esac; \
	  dict=; [ -f $$d ] && dict=-dict=$$d; \
	  echo "=== fuzz: $$t for $(FUZZ_SECONDS) s ==="; \
	  $(FUZZ_DIR)/$$t $(FUZZ_RUN_FLAGS) $$dict -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/$$t/ \
	    $(FUZZ_DIR)/corpus/$$t $$(ls -d tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t 2>/dev/null) \
	    >$(FUZZ_DIR)/$$t.log 2>&1 && rc=0 || rc=$$?; \
	  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss)' $(FUZZ_DIR)/$$t.log || true; \
	  if [ $$rc -ne 0 ]; then tail -60 $(FUZZ_DIR)/$$t.log; \
	    echo "fuzz: $$t FAILED (exit $$rc) — log $(FUZZ_DIR)/$$t.log, input in $(FUZZ_DIR)/crashes/$$t/"; exit 1; fi; \
	done

# Replays every committed input (corpus and regressions) once, then fuzzes
# each target briefly in a scratch corpus. Called by `make test`.
fuzz-smoke: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  inputs=$$(find tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t -type f 2>/dev/null | sort); \
	  echo "=== fuzz-smoke: $$t: replay $$(echo "$$inputs" | grep -c . || true) inputs ==="; \
	  if [ -n "$$inputs" ]; then $(FUZZ_DIR)/$$t -runs=1 $$inputs >$(FUZZ_DIR)/$$t.replay.log 2>&1 || \
	    { tail -40 $(FUZZ_DIR)/$$t.replay.log; echo "fuzz-smoke: $$t replay FAILED"; exit 1; }; fi; \
	  rm -rf $(FUZZ_DIR)/smoke/$$t; mkdir -p $(FUZZ_DIR)/smoke/$$t $(FUZZ_DIR)/crashes/$$t; \
	  case $$t in *pg*) d=tests/fuzz/pg.dict;; *http*) d=tests/fuzz/http.dict;; *) d=tests/fuzz/$$t.dict;; esac; \
	  dict=; [ -f $$d ] && dict=-dict=$$d; \
	  $(FUZZ_DIR)/$$t $(FUZZ_RUN_FLAGS) $$dict -max_total_time=$(FUZZ_SMOKE_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/$$t/ $(FUZZ_DIR)/smoke/$$t \
	    $$(ls -d tests/fuzz/corpus/$$t 2>/dev/null) >$(FUZZ_DIR)/$$t.smoke.log 2>&1 || \
	    { tail -40 $(FUZZ_DIR)/$$t.smoke.log; echo "fuzz-smoke: $$t FAILED"; exit 1; }; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/$$t.smoke.log || true; \
	done

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
# =================================================================== /fuzz

# ---- soak and memcheck (issue 7 §3, §4) ------------------------------------
#   make soak       bounded soak (SOAK_SECONDS, default 60): 10 000 connections
#                   over raw/pg/file playgrounds with injected resets,
#                   slowloris and a PostgreSQL restart; bench/RESULTS.md
#   make memcheck   the integration suites with the playground under valgrind
#                   memcheck, and the in-process suites with the runner under
#                   it; zero errors required (docs/testing.md)
.PHONY: soak memcheck

$(BUILD)/soak: bench/soak.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

soak: all $(BUILD)/soak
	BUILD=$(BUILD) SOAK=$(BUILD)/soak PLAYGROUND=$(BUILD)/playground bench/soak.sh

memcheck: all
	BUILD=$(BUILD) mk/memcheck.sh
