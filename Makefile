# ioxide — build, regenerate, test, run, bench.
#
#   make            build everything into build/ (library, examples, tests)
#   make run        build and start the raw playground on :8080
#   make run-pg     the playground in pg mode against a throwaway PostgreSQL
#   make test       build and run every test: normal build, then ASan+UBSan
#   make regen      re-run Ragel and the machine generator into generated/
#   make bench      interleaved benchmark vs nginx (bench/RESULTS.md)
#   make bench-parse  HTTP parser micro-benchmark vs picohttpparser/http-parser
#
# Every target first runs mk/deps.sh, which installs missing Debian packages
# (as root) or prints the exact apt-get command and stops.

BUILD   ?= build
SAN     ?=
PYTHON  := /usr/bin/python3
CC      ?= gcc

CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iexamples/playground \
               -Iruntime -Igenerated -Itests -MMD -MP
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer \
                 -fno-sanitize-recover=undefined
  LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS  := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS  := -luring -lcrypto -lpthread

RUNTIME_SRC := $(sort $(wildcard runtime/*.c))
GEN_SRC     := $(sort $(wildcard generated/*.c))
LIB_SRC     := $(RUNTIME_SRC) $(GEN_SRC)
LIB_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB         := $(BUILD)/libioxide.a

PLAYGROUND_SRC := $(sort $(wildcard examples/playground/*.c))
PLAYGROUND_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(PLAYGROUND_SRC))
TEST_SRC    := $(sort $(wildcard tests/*.c))
TEST_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRC))

DEPS_STAMP  := $(BUILD)/.deps-ok

.PHONY: all deps run run-pg test test-normal test-asan regen check-regen bench bench-parse clean sim

all: $(LIB) $(BUILD)/playground $(BUILD)/tests

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

$(BUILD)/tests: $(TEST_OBJ) $(LIB)
	$(CC) $(LDFLAGS_SAN) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS) -lcunit

run: all
	PORT=$${PORT:-8080} $(BUILD)/playground

# pg mode against a throwaway PostgreSQL cluster (removed on exit).
run-pg: all
	BUILD=$(BUILD) mk/run-pg.sh

# The suite runs twice: the normal build, then ASan+UBSan (LeakSanitizer on).
test:
	@mk/deps.sh --test
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all
	$(MAKE) --no-print-directory test-normal test-asan

test-normal:
	@echo "=== test: normal build ==="
	IOX_SRC_DIR=$(CURDIR) $(BUILD)/tests $(TESTS)

test-asan:
	@echo "=== test: ASan+UBSan build ==="
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  IOX_SRC_DIR=$(CURDIR) build/asan/tests $(TESTS)

# Seeded simulation of the machines through the simulated ring.
#   make sim                 IOX_SIM_SEEDS (default 20000) schedules per machine
#   make sim SEED=1827       replay one seed exactly
sim: all
	IOX_SIM_SEEDS=$${IOX_SIM_SEEDS:-20000} $(if $(SEED),IOX_SEED=$(SEED)) $(BUILD)/tests conn_sim

regen:
	@mk/deps.sh
	mk/regen.sh generated

bench-parse: | $(DEPS_STAMP)
	@mk/deps.sh --bench
	$(MAKE) --no-print-directory $(BUILD)/bench_parse
	$(BUILD)/bench_parse

$(BUILD)/bench_parse: $(BUILD)/obj/bench/bench_parse.o $(LIB)
	$(CC) -o $@ $^ $(LDLIBS) -lh2o-evloop -lhttp_parser

bench: all
	@mk/deps.sh --bench
	bench/run.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

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
