# pyudf build. Everything derives from one interpreter: PYTHON (default: python3 on PATH).
# Its sysconfig gives the pkg-config directory for cgo (python3-embed) and the directory
# of libpython, which goes into the binaries' rpath; its pip installs requirements.txt.

PYTHON ?= python3
PY_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)
ifeq ($(PY_EXE),)
$(error PYTHON=$(PYTHON) is not a working Python interpreter)
endif
PY_VERSION := $(shell $(PY_EXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PY_LIBPC := $(shell $(PY_EXE) -c 'import sysconfig; print(sysconfig.get_config_var("LIBPC"))')
PY_LIBDIR := $(shell $(PY_EXE) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')

export PKG_CONFIG_PATH := $(PY_LIBPC)
export CGO_ENABLED := 1
export CGO_LDFLAGS := -Wl,-rpath,$(PY_LIBDIR)
export LD_LIBRARY_PATH := $(PY_LIBDIR)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
# The engine embeds the interpreter PYUDF_PYTHON names (its venv, its site-packages).
export PYUDF_PYTHON := $(PY_EXE)

DEPS_STAMP := .deps/$(subst /,_,$(PY_EXE)).stamp
GO_TEST_FLAGS ?= -race -count=1
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
MATRIX ?= 3.10 3.11 3.12 3.13

.PHONY: all deps build vet test test-connect bench-connect test-go test-py test-pyflink test-subinterp test-subinterp-run test-fuzz fuzz soak demo bench bench-quick bench-anchors test-matrix env clean

all: build

env:
	@echo "PYTHON=$(PY_EXE) ($(PY_VERSION))"
	@echo "PKG_CONFIG_PATH=$(PKG_CONFIG_PATH)"
	@echo "CGO_LDFLAGS=$(CGO_LDFLAGS)"

# pip dependencies go into the chosen interpreter once per requirements.txt change.
deps: $(DEPS_STAMP)
$(DEPS_STAMP): requirements.txt
	@mkdir -p .deps
	$(PY_EXE) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

build: deps
	go build ./...

vet: deps
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || \
		{ echo "gofmt needed:"; gofmt -l .; exit 1; }

test: vet test-py test-go test-fuzz test-subinterp test-connect

# The integrations (connect/<name>, examples/<name>) are Go modules of their own, so that the
# core module keeps its two dependencies: each is vetted and tested in its own directory.
# A module may have a ./bench command printing JSON results (as bench -json does);
# make bench runs it and merges its results into the report.
MODULES := $(patsubst %/go.mod,%,$(wildcard connect/*/go.mod examples/*/go.mod))
test-connect: deps
	@for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && go vet ./... && go test $(GO_TEST_FLAGS) ./...) || exit 1; \
	done
bench-connect: deps
	@mkdir -p .deps; rm -f .deps/bench-connect-*.jsonl; for m in $(MODULES); do \
		if [ -d $$m/bench ]; then echo "== $$m/bench"; \
			(cd $$m && go run ./bench -json) > .deps/bench-connect-$$(basename $$m).jsonl || exit 1; fi; \
	done

# Everything under the race detector; then what the race detector distorts
# (allocation counts, as sync.Pool drops items under -race, and the memory
# soak); then the cgo pointer rules, checked fully (the old GODEBUG=cgocheck=2).
test-go: deps
	go test $(GO_TEST_FLAGS) ./...
	go test -count=1 -run 'NoAllocations|Soak' ./engine
	GOEXPERIMENT=cgocheck2 go test -count=1 ./engine ./arrowconv

# The value codec's fuzz targets (package:target): briefly in make test, for
# FUZZTIME each in make fuzz. Go fuzzes one target per command.
FUZZ_TARGETS := bridge:FuzzDecodeResult engine:FuzzRoundTrip engine:FuzzCDecoder
FUZZTIME ?= 60s
# make test runs a count of inputs, not a duration: a duration's deadline can
# end a fuzz run mid-input, which go test reports as a failure ("context
# deadline exceeded"). 10000 inputs take 0.5-4 s per target here.
FUZZ_SHORT ?= 10000x

test-fuzz: deps
	@for t in $(FUZZ_TARGETS); do \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZ_SHORT) -parallel 1 ./$${t%%:*} || exit 1; \
	done

fuzz: deps
	@for t in $(FUZZ_TARGETS); do \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*} || exit 1; \
	done

# The soaks at length: mixed traffic from 16 goroutines for SOAK (make test runs it for 60 s).
SOAK ?= 30m
soak: deps
	PYUDF_SOAK=$(SOAK) go test -count=1 -timeout 0 -v -run 'Soak' ./engine

test-py: deps
	cd python && PYTHONDONTWRITEBYTECODE=1 $(PY_EXE) -m pytest -q -p no:cacheprovider tests

demo: deps
	go run ./examples/quickstart

.PHONY: demo-cdn
demo-cdn: deps
	cd examples/cdn && go run . -db $(CURDIR)/.deps/cdn.db

bench-quick: deps
	go run ./bench -quick -json

bench: deps bench-connect
	go run ./bench -progress -report bench/report -merge '.deps/bench-connect-*.jsonl'

# PyFlink (apache-flink, with its pinned pandas/pyarrow/beam) in a virtualenv of
# its own, so that it does not disturb the project's packages; Java 17 runs it.
PYFLINK_PYTHON_BASE ?= $(PY_EXE)
PYFLINK_VENV := .deps/pyflink-venv
$(PYFLINK_VENV)/.stamp:
	@mkdir -p .deps
	$(PYFLINK_PYTHON_BASE) -m venv $(PYFLINK_VENV)
	$(PYFLINK_VENV)/bin/pip install --disable-pip-version-check -q apache-flink
	@touch $@

# PEMJA called from Java 17 (bench/anchors/pemja), built against the com.alibaba:pemja
# jar of the pemja pip package's version in the PyFlink virtualenv. Maven downloads
# into ~/.m2 once; later builds run offline (-o) and go online only for what is missing.
PEMJA_BENCH := bench/anchors/pemja
PEMJA_CLASSPATH := $(PEMJA_BENCH)/target/pemja-bench.jar:$(PEMJA_BENCH)/target/lib/*
$(PEMJA_BENCH)/target/.stamp: $(PYFLINK_VENV)/.stamp $(PEMJA_BENCH)/pom.xml $(wildcard $(PEMJA_BENCH)/src/main/java/dev/pyudf/bench/*.java)
	cd $(PEMJA_BENCH) && v=$$($(abspath $(PYFLINK_VENV))/bin/python -c 'import importlib.metadata as m; print(m.version("pemja"))') && \
		{ mvn -q -B -o -Dstyle.color=never package -Dpemja.version=$$v 2>/dev/null || \
		  mvn -q -B -Dstyle.color=never package -Dpemja.version=$$v; }
	@touch $@

# The full benchmark plus the anchors: PyFlink's thread and process modes on the
# JSON UDF, its thread mode on upper (and the same job with no UDF), and PEMJA.
bench-anchors: deps bench-connect $(PYFLINK_VENV)/.stamp $(PEMJA_BENCH)/target/.stamp
	go run ./bench -progress -anchors -pyflink-python $(PYFLINK_VENV)/bin/python \
		-pemja-classpath '$(PEMJA_CLASSPATH)' -report bench/report -merge '.deps/bench-connect-*.jsonl'

# The whole suite once per CPython version that pyenv has; prints one line per version.
test-matrix:
	@mkdir -p .deps; status=0; for v in $(MATRIX); do \
		py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python3 2>/dev/null | sort -V | tail -n 1); \
		if [ -z "$$py" ]; then echo "python $$v: MISSING (no $(PYENV_ROOT)/versions/$$v.*)"; status=1; continue; fi; \
		if $(MAKE) --no-print-directory test PYTHON=$$py > .deps/matrix-$$v.log 2>&1; \
		then echo "python $$v ($$py): PASS"; \
		else echo "python $$v ($$py): FAIL (see .deps/matrix-$$v.log)"; status=1; fi; \
	done; exit $$status

# The sub-interpreter pool (Mode Subinterpreters) needs CPython 3.12+: when
# PYTHON is older, the engine's suites (every modes() test runs in that mode
# too there) also run on the newest pyenv CPython 3.13 or 3.12 here, without
# the race detector (about 4 minutes). Without either, make test fails.
SUBINTERP_PYTHON ?= $(shell ls -d $(PYENV_ROOT)/versions/3.13.*/bin/python3 $(PYENV_ROOT)/versions/3.12.*/bin/python3 2>/dev/null | sort -V | tail -n 1)
test-subinterp:
	@if $(PY_EXE) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		echo "test-subinterp: covered by test-go on $(PY_VERSION)"; \
	elif [ -z "$(SUBINTERP_PYTHON)" ]; then \
		echo "test-subinterp: no CPython 3.12+ under $(PYENV_ROOT)/versions: the sub-interpreter pool is untested"; exit 1; \
	else \
		$(MAKE) --no-print-directory test-subinterp-run PYTHON=$(SUBINTERP_PYTHON); \
	fi
test-subinterp-run: deps
	go test -count=1 ./engine ./cgo

clean:
	rm -rf .deps
	go clean -testcache

# PyFlink's documentation examples checked against the real PyFlink (apache-flink in
# .deps/pyflink-venv, ~850 MB, about a minute to install): fails, not skips, without it.
test-pyflink: deps $(PYFLINK_VENV)/.stamp
	PYUDF_REQUIRE_PYFLINK=1 PYFLINK_PYTHON=$(abspath $(PYFLINK_VENV))/bin/python go test $(GO_TEST_FLAGS) -run 'TestPyFlinkDocs' -v ./engine
