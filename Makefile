# pyudf build. Everything derives from one interpreter: PYTHON (default: python3 on PATH), any
# CPython 3.10+ built with a shared libpython. Nothing is installed into it: `make deps`
# (scripts/setup-python.sh) checks it, makes the project virtualenv .deps/venv-<version>-<hash>
# from it (or uses PYTHON as it is when it is a virtualenv's interpreter) and installs
# requirements.txt there. cgo compiles against the base interpreter's python-X.Y-embed.pc and
# links its libpython (rpath); the engine embeds that libpython with the virtualenv's
# site-packages (PYUDF_PYTHON names the virtualenv's interpreter). `make doctor` shows it all.

PYTHON ?= python3
SETUP := scripts/setup-python.sh
# "VENV_PYTHON VERSION PKG_CONFIG_DIR LIBDIR BASE_PYTHON", or nothing when PYTHON cannot be
# used: then `make deps` (which every build target needs) names what is missing and how to fix it.
PY_SETUP := $(shell $(SETUP) env '$(PYTHON)' 2>/dev/null)
PY_EXE := $(word 1,$(PY_SETUP))
PY_VERSION := $(word 2,$(PY_SETUP))
PY_PCDIR := $(word 3,$(PY_SETUP))
PY_LIBDIR := $(word 4,$(PY_SETUP))
PY_BASE := $(word 5,$(PY_SETUP))

export PKG_CONFIG_PATH := $(PY_PCDIR)
export CGO_ENABLED := 1
export CGO_LDFLAGS := -Wl,-rpath,$(PY_LIBDIR)
export LD_LIBRARY_PATH := $(PY_LIBDIR)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
# The engine embeds the interpreter PYUDF_PYTHON names (its venv, its site-packages).
export PYUDF_PYTHON := $(PY_EXE)

GO_TEST_FLAGS ?= -race -count=1 -timeout 30m
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
MATRIX ?= 3.10 3.11 3.12 3.13

.PHONY: all deps doctor env-sh test-scripts build vet test image image-test image-worker image-worker-test deps-debian deps-image test-connect bench-connect bench-connect-report test-go test-py test-pyflink test-subinterp test-subinterp-run test-fuzz fuzz soak demo bench bench-quick bench-anchors test-matrix env clean

all: build

env:
	@echo "PYTHON=$(PYTHON) -> $(or $(PY_EXE),unusable: make deps says why) $(PY_VERSION)"
	@echo "PKG_CONFIG_PATH=$(PKG_CONFIG_PATH)"
	@echo "CGO_LDFLAGS=$(CGO_LDFLAGS)"
	@echo "PYUDF_PYTHON=$(PYUDF_PYTHON)"

# The same environment as shell exports, for go commands run by hand:
#   eval "$$(make -s env-sh)"; go test -run TestX ./engine
env-sh: deps
	@echo "export PKG_CONFIG_PATH='$(PKG_CONFIG_PATH)' CGO_ENABLED=1 CGO_LDFLAGS='$(CGO_LDFLAGS)' LD_LIBRARY_PATH='$(LD_LIBRARY_PATH)' PYUDF_PYTHON='$(PYUDF_PYTHON)'"

# The project virtualenv for PYTHON, with requirements.txt installed once per change of it;
# on Debian, as root, also python3-dev and python3-venv when they are missing.
deps:
	@$(SETUP) deps '$(PYTHON)'

# What the build would use, and what is missing: interpreter, libpython, virtualenv,
# packages, Go, Java and Maven (for the anchors), pyenv's versions (for test-matrix).
doctor:
	@scripts/doctor.sh '$(PYTHON)'

# The set-up scripts' own tests (fake interpreters for each missing piece).
test-scripts: deps
	PYTHON='$(PYTHON)' scripts/test-setup.sh

build: deps
	go build ./...

vet: deps
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || \
		{ echo "gofmt needed:"; gofmt -l .; exit 1; }

test: vet test-scripts test-py test-go test-fuzz test-subinterp test-connect

# The integrations (connect/<name>, examples/<name>) are Go modules of their own, so that the
# core module keeps its two dependencies: each is vetted and tested in its own directory.
# A module may have a ./bench command printing JSON results (as bench -json does);
# make bench runs it and merges its results into the report.
MODULES := $(patsubst %/go.mod,%,$(wildcard connect/*/go.mod examples/*/go.mod))
test-connect: deps deps-debian
	@for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && go vet ./... && go test $(GO_TEST_FLAGS) ./...) || exit 1; \
	done
# Debian packages that tests and targets need, installed when missing and running as root
# (apt-get update once); otherwise the command that installs them is named.
# examples/cdn's tests start a real PostgreSQL; make image uses buildah and debootstrap.
define apt_need
	@missing=""; for c in $(2); do p=$${c%%:*}; f=$${c#*:}; \
		ls $$f >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "$(1): installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
		else echo "$(1): needs Debian's$$missing: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi
endef
deps-debian:
	$(call apt_need,test-connect,postgresql:/usr/lib/postgresql/*/bin/initdb)
deps-image:
	$(call apt_need,image,buildah:/usr/bin/buildah debootstrap:/usr/sbin/debootstrap procps:/usr/bin/pgrep)

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
	go test -count=1 -timeout 30m -run 'NoAllocations|Soak' ./engine
	GOEXPERIMENT=cgocheck2 go test -count=1 -timeout 30m ./engine ./arrowconv

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

# The seed scenarios as applications (examples/<app>, modules of their own; their READMEs).
.PHONY: demo-cdn demo-features demo-inference
demo-cdn: deps
	cd examples/cdn && go run . -db $(CURDIR)/.deps/cdn.db
demo-features: deps
	cd examples/features && go run . -db $(CURDIR)/.deps/features.db
demo-inference: deps
	cd examples/inference && go run . -cache-dir $(CURDIR)/.deps/inference-cache

bench-quick: deps
	go run ./bench -quick -json

# Only the integrations' benchmarks, added to the committed report (replacing their old figures).
bench-connect-report: bench-connect
	go run ./bench -update -report bench/report -merge '.deps/bench-connect-*.jsonl'

bench: deps bench-connect
	go run ./bench -progress -report bench/report -merge '.deps/bench-connect-*.jsonl'

# PyFlink (apache-flink, with its pinned pandas/pyarrow/beam) in a virtualenv of
# its own, so that it does not disturb the project's packages; Java 17 runs it.
PYFLINK_PYTHON_BASE ?= $(PY_BASE)
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

# The whole suite (MATRIX_TARGET) once per interpreter, one line each: Debian's /usr/bin/python3
# (where it exists), each CPython version of MATRIX that pyenv has, and an existing virtualenv
# (.deps/matrix-venv, made once from PYTHON's base interpreter, as a user would have one).
MATRIX_TARGET ?= test
MATRIX_SYSTEM ?= $(wildcard /usr/bin/python3)
MATRIX_VENV := $(CURDIR)/.deps/matrix-venv
test-matrix:
	@mkdir -p .deps; status=0; \
	run() { \
		if $(MAKE) --no-print-directory $(MATRIX_TARGET) PYTHON=$$2 > .deps/matrix-$$3.log 2>&1; \
		then echo "$$1 ($$2): PASS"; \
		else echo "$$1 ($$2): FAIL (see .deps/matrix-$$3.log)"; status=1; fi; \
	}; \
	for py in $(MATRIX_SYSTEM); do run "system python" $$py system; done; \
	for v in $(MATRIX); do \
		py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python3 2>/dev/null | sort -V | tail -n 1); \
		if [ -z "$$py" ]; then echo "python $$v: MISSING (no $(PYENV_ROOT)/versions/$$v.*)"; status=1; continue; fi; \
		run "python $$v" $$py $$v; \
	done; \
	if [ -x $(MATRIX_VENV)/bin/python ] || $(PY_BASE) -m venv $(MATRIX_VENV) > .deps/matrix-venv.log 2>&1; \
	then run "virtualenv" $(MATRIX_VENV)/bin/python venv; \
	else echo "virtualenv: FAIL (cannot make one from PYTHON=$(PYTHON): see .deps/matrix-venv.log)"; status=1; fi; \
	exit $$status

# The sub-interpreter pool (Mode Subinterpreters) needs CPython 3.12+: when
# PYTHON is older, the engine's suites (every modes() test runs in that mode
# too there) also run on the newest pyenv CPython 3.13 or 3.12 here, without
# the race detector (about 4 minutes). Without either, make test fails.
SUBINTERP_PYTHON ?= $(shell ls -d $(PYENV_ROOT)/versions/3.13.*/bin/python3 $(PYENV_ROOT)/versions/3.12.*/bin/python3 2>/dev/null | sort -V | tail -n 1)
test-subinterp: deps
	@if $(PY_BASE) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		echo "test-subinterp: covered by test-go on $(PY_VERSION)"; \
	elif [ -z "$(SUBINTERP_PYTHON)" ]; then \
		echo "test-subinterp: no CPython 3.12+ under $(PYENV_ROOT)/versions: the sub-interpreter pool is untested"; exit 1; \
	else \
		$(MAKE) --no-print-directory test-subinterp-run PYTHON=$(SUBINTERP_PYTHON); \
	fi
test-subinterp-run: deps
	go test -count=1 -timeout 30m ./engine ./cgo

clean:
	rm -rf .deps
	go clean -testcache

# PyFlink's documentation examples checked against the real PyFlink (apache-flink in
# .deps/pyflink-venv, ~850 MB, about a minute to install): fails, not skips, without it.
test-pyflink: deps $(PYFLINK_VENV)/.stamp
	PYUDF_REQUIRE_PYFLINK=1 PYFLINK_PYTHON=$(abspath $(PYFLINK_VENV))/bin/python go test $(GO_TEST_FLAGS) -run 'TestPyFlinkDocs' -v ./engine

# The container image (Dockerfile; `docker build .` with a registry). Here: buildah,
# with offline stand-ins for the base images (docker/stand-in-bases.sh, as root).
IMAGE ?= localhost/pyudf:latest
image: deps-image
	bash docker/stand-in-bases.sh
	buildah bud --isolation=chroot --pull=never --layers -t $(IMAGE) .

# Runs the image's default command in a container and checks its output (docker/image-test.sh).
image-test: image
	bash docker/image-test.sh $(IMAGE)

# The Dockerfile's worker target (a Beam Go SDK worker image with libpython); the test runs
# it as an EXTERNAL worker pool and a connect/beam pipeline on Prism against it.
WORKER_IMAGE ?= localhost/pyudf-beam-worker:latest
image-worker: deps-image
	bash docker/stand-in-bases.sh
	buildah bud --isolation=chroot --pull=never --layers --target worker -t $(WORKER_IMAGE) .
image-worker-test: image-worker
	bash docker/beam-worker-test.sh $(WORKER_IMAGE)
