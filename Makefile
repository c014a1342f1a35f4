# janebot -- `make` builds build/janebot (no network, no root).
#   make chat     install missing packages, build, start `janebot chat`
#   make check    install missing packages, build, run every test (plain, ASan+UBSan, TSan)
#                 and each fuzz target for 30 s
#   make test     run the tests against what is built (no package install)
#   make tsan     ThreadSanitizer build: thread stress + integration tests
#   make bench    benchmarks (bench/*.py, bench-exec) and their goal table

CC      ?= cc
PKGS    := sqlite3 jansson libcrypto libssl libedit libseccomp libwebsockets libcmark yaml-0.1
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -pthread  # http_parser: no .pc file

B       ?= build
ifeq ($(SAN),1)
B       := build-san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# libFuzzer build (clang): the library instrumented for coverage; targets in tests/fuzz/.
ifeq ($(FUZZ),1)
B       := build-fuzz
CC      := clang
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined -Wno-missing-field-initializers
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

# JB_CHILD_FORK: sandbox/child.c forks (ThreadSanitizer cannot follow a clone(CLONE_VM) child).
ifeq ($(TSAN),1)
B       := build-tsan
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -DJB_CHILD_FORK
LDFLAGS += -fsanitize=thread
endif

LIB_SRC  := $(sort $(wildcard src/util/*.c src/store/*.c src/agent/*.c src/sandbox/*.c \
                              src/frontend/*.c src/core/*.c src/proxy/*.c src/slack/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CMD_SRC  := $(sort $(wildcard src/cmd/*.c))
CMD_OBJ  := $(CMD_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)
FUZZ_TARGETS := envelope web stream mrkdwn sprites http sni llm config dotenv
FUZZ_SECONDS ?= 30

all: $(B)/janebot

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The sandbox's first process runs this file's code in janebot's own memory until its exec
# (clone(CLONE_VM)): no sanitizer's hooks in it, in any build.
$(B)/src/sandbox/child.o: CFLAGS += -fno-sanitize=all

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(B)/src/main.d $(B)/bench/bench-exec.d \
           $(B)/tests/tsan/stress.d $(FUZZ_TARGETS:%=$(B)/tests/fuzz/%.d)

$(B)/libjanebot.a: $(LIB_OBJ) $(B)/src/sandbox/init-elf.o
	rm -f $@ && ar rcs $@ $^

# The sandbox init (src/sandbox-init.c) is a program of its own, linked statically so a
# sandbox's first process starts without loading janebot's shared libraries; janebot embeds
# it (src/sandbox/init-elf.S). Built from its own objects without sanitizers (they cannot
# link statically), the same in every build.
INIT_SRC := src/sandbox-init.c src/sandbox/init.c src/proxy/handoff.c src/util/err.c
INIT_OBJ := $(INIT_SRC:%.c=$(B)/init/%.o)
INIT_CFLAGS := -O2 -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -Isrc
-include $(INIT_OBJ:.o=.d)

$(B)/init/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(INIT_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/janebot-init: $(INIT_OBJ)
	$(CC) -static -pthread -o $@ $^

$(B)/src/sandbox/init-elf.o: src/sandbox/init-elf.S $(B)/janebot-init
	@mkdir -p $(dir $@)
	$(CC) -DINIT_ELF='"$(B)/janebot-init"' -c -o $@ $<

$(B)/janebot: $(B)/src/main.o $(CMD_OBJ) $(B)/libjanebot.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit-tests: $(UNIT_OBJ) $(B)/libjanebot.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

unit: $(B)/unit-tests $(B)/janebot

setup:
	./scripts/setup.sh

setup-test:
	./scripts/setup.sh --test

chat: setup
	$(MAKE) all
	./build/janebot chat

# Plain build, the ASan+UBSan build and the TSan build; each runs its tests (run-all);
# then a one-minute soak of the plain build.
check: setup-test
	$(MAKE) all unit
	$(MAKE) SAN=1 all unit
	$(MAKE) TSAN=1 all build-tsan/tsan-stress
	./tests/run-all
	$(MAKE) fuzz
	$(MAKE) soak

test: all unit
	$(MAKE) SAN=1 all unit
	$(MAKE) TSAN=1 all build-tsan/tsan-stress
	./tests/run-all
	$(MAKE) fuzz

$(B)/tsan-stress: $(B)/tests/tsan/stress.o $(B)/libjanebot.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ThreadSanitizer: the thread stress program, then the integration tests against a TSan
# janebot; a data race fails the run (halt_on_error).
tsan:
	$(MAKE) TSAN=1 all build-tsan/tsan-stress
	BUILDS=build-tsan ./tests/run-all

$(B)/bench-exec: $(B)/bench/bench-exec.o $(B)/libjanebot.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every script prints its own tables and appends its goal rows (bench/benchlib.py) to
# BENCH_RESULTS; the summary prints them all at the end. A script that fails does not
# hide the others' figures, but fails the run.
BENCH_RESULTS = $(B)/bench-results.jsonl
bench: all $(B)/bench-exec
	@rm -f $(BENCH_RESULTS); st=0; \
	for b in "./$(B)/bench-exec ./$(B)/janebot" "./bench/proxy-throughput.py ./$(B)/janebot" \
		"./bench/slack-ack.py ./$(B)/janebot" "./bench/llm-proxy.py ./$(B)/janebot" \
		"./bench/sprites-latency.py ./$(B)/janebot" "./bench/serve-memory.py ./$(B)/janebot"; do \
		echo "== $$b"; BENCH_RESULTS=$(BENCH_RESULTS) $$b || st=1; \
	done; ./bench/summary.py $(BENCH_RESULTS) || st=1; exit $$st

# libFuzzer targets (tests/fuzz/README.md): each runs FUZZ_SECONDS, two at a time; a
# crash, leak or sanitizer report fails the run.
$(B)/fuzz/%: $(B)/tests/fuzz/%.o $(B)/libjanebot.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
.SECONDARY: $(FUZZ_TARGETS:%=$(B)/tests/fuzz/%.o)

fuzz-build:
	$(MAKE) FUZZ=1 $(FUZZ_TARGETS:%=build-fuzz/fuzz/%)

fuzz: fuzz-build
	./tests/fuzz/run.py --seconds $(FUZZ_SECONDS) build-fuzz/fuzz $(FUZZ_TARGETS)

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=600

# Soak: serve under 50 envelopes/s over 500 threads for SOAK_SECONDS (make soak
# SOAK_SECONDS=600 for the long one). Crash: ROUNDS kill -9 of serve under load.
SOAK_SECONDS ?= 60
ROUNDS ?= 50
soak: all
	SOAK_SECONDS=$(SOAK_SECONDS) ./tests/soak/soak.py ./$(B)/janebot

crash: all
	ROUNDS=$(ROUNDS) ./tests/soak/crash.py ./$(B)/janebot

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr -Isrc --std=c11 src

clean:
	rm -rf build build-san build-tsan build-fuzz

.PHONY: all unit setup setup-test chat check test tsan bench fuzz fuzz-build fuzz-long soak \
        crash format lint clean
