# aiproxy — GNU make build.
#
#   make            build every binary into build/bin (optimised, with debug info)
#   make SAN=1      the same under AddressSanitizer + UBSan, into build/asan/bin
#   make SAN=thread the same under ThreadSanitizer, into build/tsan/bin
#   make tsan       the TSan build, then its unit tests and the threaded integration tests
#   make checksrc   banned functions (sprintf, strcpy, atoi...) in our C sources,
#                   and the include layering (scripts/layers.sh)
#   make deps       install the Debian 12 packages the build, run and tests need
#   make run        start Redis, the broker, the responders and nginx on 127.0.0.1:8000
#   make test       unit tests + integration tests (real Redis, nginx, MCP servers)
#   make bench      benchmarks, each figure beside a baseline measured in the same run
#   make docker-check  the container image without a container engine: its
#                   package list installs on Debian 12, the broker runs npx and
#                   uvx MCP servers (scripts/docker-check.sh; not in make test)
#
# Each source folder builds as a static library of all its .c files except
# main.c (and probe.c), so unit tests link the same objects the daemons do.
# fcgi/ is one library built from its sub-folders (core, openai, anthropic,
# admin, auth: one per concern or API surface); fcgi/core/main.c is the binary.
# Tests: every tests/unit/test_*.c and tests/unit/<folder>/test_*.c (the folders
# mirror the sources) is its own cmocka program, build/.../bin/test_NAME, so
# NAME is unique across folders; the wildcard is the one place they are
# registered.

CC      ?= cc
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      = -O1
else ifeq ($(SAN),thread)
BUILD   ?= build/tsan
SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer
OPT      = -O1
else
BUILD   ?= build
SANFLAGS =
OPT      = -O2
endif

CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wformat=2 -Wno-format-nonliteral -I. $(SANFLAGS) -MMD -MP
LDFLAGS += $(SANFLAGS)
LDLIBS  += -lfcgi -lcurl -lcrypto -ljson-c -lyaml -lhiredis -luv -lpthread -lm

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
LIB := $(BUILD)/lib

lib_src = $(filter-out $(1)/main.c $(1)/probe.c,$(wildcard $(1)/*.c))
objs    = $(patsubst %.c,$(OBJ)/%.o,$(1))

SHARED_OBJ := $(call objs,$(call lib_src,shared))
AGENT_OBJ  := $(call objs,$(call lib_src,agent))
FCGI_DIRS  := fcgi $(patsubst %/.,%,$(wildcard fcgi/*/.))
FCGI_OBJ   := $(call objs,$(foreach d,$(FCGI_DIRS),$(call lib_src,$(d))))
BROKER_OBJ := $(call objs,$(call lib_src,mcp-broker))

LIB_SHARED := $(LIB)/libaiproxy-shared.a
LIB_AGENT  := $(LIB)/libaiproxy-agent.a
LIB_FCGI   := $(LIB)/libaiproxy-fcgi.a
LIB_BROKER := $(LIB)/libaiproxy-broker.a

BINS := $(BIN)/aiproxy-fcgi $(BIN)/aiproxy-cgi $(BIN)/mcp-broker $(BIN)/mcp-demo
ifneq ($(wildcard mcp-broker/probe.c),)
BINS += $(BIN)/mcp-probe
endif
DAEMONS := $(BINS)
BINS += $(patsubst tests/bench/%.c,$(BIN)/%,$(wildcard tests/bench/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c tests/unit/*/test_*.c)
UNIT_SUPPORT := $(call objs,$(wildcard tests/unit/support/*.c))
UNIT_BINS := $(patsubst %.c,$(BIN)/%,$(notdir $(UNIT_SRC)))

.PHONY: all deps run test unit integration bench clean asan install unit-bins tsan checksrc docker-check
PREFIX  ?= /usr/local
DESTDIR ?=
all: $(BINS)

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB)/lib%.a:
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(LIB_SHARED): $(SHARED_OBJ)
$(LIB_AGENT):  $(AGENT_OBJ)
$(LIB_FCGI):   $(FCGI_OBJ)
$(LIB_BROKER): $(BROKER_OBJ)

$(BIN)/aiproxy-fcgi: $(OBJ)/fcgi/core/main.o $(LIB_FCGI) $(LIB_AGENT) $(LIB_SHARED)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The CGI front (fcgi/cgi-front, docs/shared-hosting.md): libc only, and
# static in the optimised build, so a request pays no dynamic loader. The
# sanitizer builds link it dynamically (ASan cannot be static).
CGI_FRONT_OBJ := $(call objs,$(wildcard fcgi/cgi-front/*.c))
ifeq ($(SAN),0)
CGI_FRONT_LDFLAGS := -static
endif
$(BIN)/aiproxy-cgi: $(CGI_FRONT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(CGI_FRONT_LDFLAGS) -o $@ $^

$(BIN)/mcp-broker: $(OBJ)/mcp-broker/main.o $(LIB_BROKER) $(LIB_SHARED)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/mcp-probe: $(OBJ)/mcp-broker/probe.o $(LIB_BROKER) $(LIB_SHARED)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/mcp-demo: $(OBJ)/mcp-demo/main.o $(LIB_SHARED)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/%: $(OBJ)/tests/bench/%.o $(LIB_AGENT) $(LIB_SHARED)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# each test program's own object, wherever its folder; objects link before archives
$(foreach s,$(UNIT_SRC),$(eval $(BIN)/$(basename $(notdir $(s))): $(call objs,$(s))))
$(UNIT_BINS): $(BIN)/test_%: $(UNIT_SUPPORT) $(LIB_FCGI) $(LIB_AGENT) $(LIB_BROKER) $(LIB_SHARED)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -lcmocka

unit-bins: $(UNIT_BINS)

deps:
	@scripts/deps.sh

run: deps all
	@scripts/run.sh

# The tests run the sanitizer builds: every daemon the integration suite starts
# is an ASan/UBSan binary, and the suite fails on any sanitizer or leak report;
# then the ThreadSanitizer build's unit tests and the integration files of the
# threaded responder paths (scripts/test.sh, TSAN_TEST_FILES) must be race-free.
# Banned functions and the include layers are checked first (scripts/checksrc.sh,
# scripts/layers.sh, docs/checks.md).
test: deps checksrc
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all unit-bins
	@$(MAKE) --no-print-directory SAN=thread all unit-bins
	@$(MAKE) --no-print-directory fuzz-replay
	@scripts/test.sh build/asan all build/tsan

# The ThreadSanitizer run alone.
tsan: deps
	@$(MAKE) --no-print-directory SAN=thread all unit-bins
	@scripts/test.sh build/tsan tsan

checksrc:
	@scripts/checksrc.sh
	@scripts/layers.sh

unit: deps
	@$(MAKE) --no-print-directory SAN=1 all unit-bins
	@scripts/test.sh build/asan unit

bench: deps all
	@scripts/bench.sh build

docker-check: all
	@scripts/docker-check.sh build/bin

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/aiproxy $(DESTDIR)$(PREFIX)/share/aiproxy/conf
	install -m 0755 $(DAEMONS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 README.md LICENSE $(DESTDIR)$(PREFIX)/share/doc/aiproxy/
	cp -r conf/. $(DESTDIR)$(PREFIX)/share/aiproxy/conf/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- fuzzing (tests/fuzz, docs/fuzzing.md) -----------------------------------
# libFuzzer targets for the parsers, built with clang (ASan + UBSan + LSan)
# into build/fuzz/, apart from the gcc objects. `make fuzz` builds them and
# runs each for FUZZ_SECONDS, replaying tests/fuzz/corpus/<name>/ (seeds and
# every reproducer found so far) first; it fails on any crash, leak or hang.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
                -Wno-unused-parameter -I. $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(foreach d,shared agent $(FCGI_DIRS) mcp-broker,$(call lib_src,$(d))))
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/bin/%,$(wildcard tests/fuzz/fuzz_*.c))
.SECONDARY: $(patsubst %,$(FUZZ_BUILD)/obj/tests/fuzz/%.o,$(notdir $(FUZZ_BINS)))

.PHONY: fuzz fuzz-build fuzz-replay
fuzz-build: $(FUZZ_BINS)

# every saved input (seeds and reproducers) once: part of `make test`
fuzz-replay: fuzz-build
	@FUZZ_REPLAY=1 tests/fuzz/run.sh $(FUZZ_BUILD) 0 $(notdir $(FUZZ_BINS))

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(notdir $(FUZZ_BINS))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/lib/libaiproxy-all.a: $(FUZZ_LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/bin/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/lib/libaiproxy-all.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
# ---- end of fuzzing -----------------------------------------------------------
