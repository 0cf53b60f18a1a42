#!/usr/bin/env bash
# The Python set-up behind make: checks that an interpreter can be embedded, and makes the
# project virtualenv the engine uses. Nothing is ever installed into the interpreter itself.
#
#   scripts/setup-python.sh check PYTHON   one line per missing piece and its fix; exit 1 if any
#   scripts/setup-python.sh env PYTHON     "VENV_PYTHON VERSION PKG_CONFIG_DIR LIBDIR BASE_PYTHON"
#                                          (nothing is created; empty output when PYTHON does not run)
#   scripts/setup-python.sh deps PYTHON    check (installing Debian's python3-dev/-venv as root),
#                                          create the virtualenv, install requirements.txt there
#
# PYTHON is any CPython 3.10+ built with a shared libpython (--enable-shared): Debian's and
# Ubuntu's /usr/bin/python3, a pyenv build, python.org's. When PYTHON is already a virtualenv's
# interpreter it is used as it is (requirements.txt goes into that virtualenv); otherwise the
# virtualenv is .deps/venv-<major.minor>-<hash of the interpreter's path>. cgo compiles against
# the base interpreter's python-X.Y-embed.pc (a python3-embed.pc link in .deps/pc-...) and links
# its libpython with an rpath; PYUDF_PYTHON names the virtualenv's interpreter, so the engine
# embeds the base libpython with the virtualenv's site-packages (the embedded interpreter reads
# the pyvenv.cfg beside the executable it is told it is, as `python` itself does).
#
# Environment: DEPS_DIR (default .deps in the repository), REQUIREMENTS (default
# requirements.txt), APT_GET (default apt-get; the tests put a stand-in there).
set -euo pipefail

SETUP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS_DIR=${DEPS_DIR:-$SETUP_ROOT/.deps}
REQUIREMENTS=${REQUIREMENTS:-$SETUP_ROOT/requirements.txt}
APT_GET=${APT_GET:-apt-get}
MIN_MINOR=10 # CPython 3.10 is the oldest the C shim supports

# The probe runs on any Python (2.7 too) so that an old one is named by its version.
PROBE='
import sys, os, sysconfig, platform
try:
    from importlib.util import find_spec
    has = lambda m: find_spec(m) is not None
except ImportError:
    has = lambda m: False
g = sysconfig.get_config_var
base = getattr(sys, "_base_executable", "") or ""
if base == sys.executable or not base:
    base = os.path.realpath(sys.executable)
venv = int(getattr(sys, "base_prefix", sys.prefix) != sys.prefix)
for k, v in [("exe", sys.executable), ("base_exe", os.path.realpath(base)),
             ("impl", platform.python_implementation()),
             ("version", "%d.%d" % sys.version_info[:2]), ("full", platform.python_version()),
             ("venv", venv), ("prefix", sys.prefix),
             ("base_prefix", getattr(sys, "base_prefix", sys.prefix)),
             ("shared", g("Py_ENABLE_SHARED") or 0), ("libdir", g("LIBDIR") or ""),
             ("ldlibrary", g("LDLIBRARY") or ""), ("libpc", g("LIBPC") or ""),
             ("include", g("INCLUDEPY") or ""),
             ("venv_module", int(has("venv") and has("ensurepip")))]:
    print("%s=%s" % (k, v))
'

# probe PYTHON: sets P_exe, P_version, ... from the interpreter; returns 1 if it does not run.
probe() {
	local out line
	out=$("$1" -c "$PROBE" 2>/dev/null) || return 1
	while IFS= read -r line; do
		case $line in *=*) printf -v "P_${line%%=*}" '%s' "${line#*=}" ;; esac
	done <<<"$out"
	[ -n "${P_exe:-}" ] && [ -n "${P_version:-}" ]
}

short_hash() { printf '%s' "$1" | sha256sum | cut -c1-8; }

# Where things go for the probed interpreter.
layout() {
	local key="$P_version-$(short_hash "$P_base_exe")"
	if [ "$P_venv" = 1 ]; then
		L_venv=$P_prefix
		L_python=$P_exe
	else
		L_venv=$DEPS_DIR/venv-$key
		L_python=$L_venv/bin/python
	fi
	L_pcdir=$DEPS_DIR/pc-$key
	L_pcfile=$P_libpc/python-$P_version-embed.pc
	L_stamp=$DEPS_DIR/stamp-$(short_hash "$L_venv")
}

# A Debian/Ubuntu interpreter (from its packages): the fix is apt-get.
is_debian_python() {
	[ "$P_base_prefix" = /usr ] && [ -f /etc/debian_version ] && command -v "$APT_GET" >/dev/null 2>&1
}

# The Debian packages for the missing pieces: python3-dev/-venv for the default python3,
# python3.X-dev/-venv for another version.
debian_packages() { # what: dev | venv
	local default
	default=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
	if [ "$default" = "$P_version" ]; then echo "python3-$1"; else echo "python$P_version-$1"; fi
}

as_root() { [ "$(id -u)" = 0 ]; }
sudo_prefix() { as_root || echo "sudo "; }

# missing: every missing piece of the probed interpreter, one line each ("piece|fix"),
# for embedding (dev) and, unless it is a virtualenv already, for making one (venv).
missing() {
	local v=$P_version minor=${P_version#*.} major=${P_version%%.*}
	if [ "$P_impl" != CPython ]; then
		echo "$P_exe is $P_impl $P_full, not CPython|make PYTHON=/path/to/cpython3 (CPython 3.$MIN_MINOR or newer)"
		return
	fi
	if [ "$major" != 3 ] || [ "$minor" -lt "$MIN_MINOR" ]; then
		echo "$P_exe is Python $P_full; pyudf needs CPython 3.$MIN_MINOR or newer|make PYTHON=/path/to/python3.12 (env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.12 builds one)"
		return
	fi
	if [ "$P_shared" != 1 ]; then
		local fix="rebuild Python $P_full with ./configure --enable-shared, or make PYTHON=<a shared build>"
		case $P_base_exe in */.pyenv/versions/*) fix="env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force $P_full" ;; esac
		echo "$P_exe is a static build of Python $P_full: no shared libpython$v.so to embed|$fix"
		return
	fi
	local devfix="reinstall Python $P_full with its development files (Python.h, libpython$v.so, python-$v-embed.pc)"
	is_debian_python && devfix="$(sudo_prefix)apt-get install -y $(debian_packages dev)"
	[ -n "$P_ldlibrary" ] && [ -e "$P_libdir/$P_ldlibrary" ] ||
		echo "no shared libpython for $P_exe ($P_libdir/${P_ldlibrary:-libpython$v.so} is missing)|$devfix"
	[ -n "$P_include" ] && [ -f "$P_include/Python.h" ] ||
		echo "no Python headers for $P_exe (${P_include:-include}/Python.h is missing)|$devfix"
	[ -f "$L_pcfile" ] ||
		echo "no pkg-config file for $P_exe ($L_pcfile is missing)|$devfix"
	if [ "$P_venv" != 1 ] && [ "$P_venv_module" != 1 ]; then
		local venvfix="reinstall Python $P_full with its venv and ensurepip modules, or make PYTHON=<an existing virtualenv>/bin/python"
		is_debian_python && venvfix="$(sudo_prefix)apt-get install -y $(debian_packages venv)"
		echo "no venv module for $P_exe (needed to make the project virtualenv)|$venvfix"
	fi
}

report() { # prints the missing pieces as "pyudf setup: PIECE. Fix: FIX"; returns 1 if any
	local lines=$1 line
	[ -z "$lines" ] && return 0
	while IFS= read -r line; do
		echo "pyudf setup: ${line%%|*}. Fix: ${line#*|}" >&2
	done <<<"$lines"
	return 1
}

load() { # load PYTHON: probe and layout, or one line saying PYTHON does not run
	if ! probe "$1"; then
		echo "pyudf setup: PYTHON=$1 is not a working Python interpreter. Fix: make PYTHON=/path/to/python3 (CPython 3.$MIN_MINOR or newer)" >&2
		return 1
	fi
	layout
}

cmd_check() {
	load "$1" || return 1
	report "$(missing)"
}

# The layout does not depend on what is missing: make reads it before `make deps` runs, which
# may apt-get the missing pieces and then build in the same make.
cmd_env() {
	probe "$1" || return 0
	layout
	echo "$L_python $P_version $L_pcdir $P_libdir $P_base_exe"
}

# On Debian, as root: apt-get the missing -dev/-venv packages (apt-get update first, once).
debian_install() {
	local lines=$1 pkgs
	is_debian_python || return 1
	pkgs=$(grep -o 'apt-get install -y .*' <<<"$lines" | sed 's/apt-get install -y //' | tr ' ' '\n' | sort -u | xargs)
	[ -n "$pkgs" ] || return 1
	if ! as_root; then
		echo "pyudf setup: not root, so not installing Debian's $pkgs: run the commands below, then make again" >&2
		return 1
	fi
	echo "pyudf setup: installing Debian's $pkgs for $P_exe (apt-get update, then apt-get install)" >&2
	"$APT_GET" update -q >&2 && DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q $pkgs >&2
}

cmd_deps() {
	local python=$1 lines
	load "$python" || return 1
	lines=$(missing)
	if [ -n "$lines" ] && debian_install "$lines"; then
		load "$python" || return 1
		lines=$(missing)
	fi
	report "$lines" || return 1
	mkdir -p "$DEPS_DIR"
	# cgo's `#cgo pkg-config: python3-embed` finds exactly this interpreter's version, even
	# where one pkgconfig directory serves several (python3-embed.pc is the default's there).
	mkdir -p "$L_pcdir"
	ln -sfn "$L_pcfile" "$L_pcdir/python3-embed.pc"
	if [ "$P_venv" != 1 ] && ! "$L_python" -c '' 2>/dev/null; then
		echo "pyudf setup: creating the project virtualenv $L_venv from $P_exe (Python $P_full)" >&2
		rm -rf "$L_venv" "$L_stamp"
		"$P_exe" -m venv "$L_venv" || {
			rm -rf "$L_venv"
			echo "pyudf setup: $P_exe -m venv $L_venv failed (see above)" >&2
			return 1
		}
	fi
	"$L_python" -m pip --version >/dev/null 2>&1 || "$L_python" -m ensurepip -q >&2
	local want
	want=$(sha256sum <"$REQUIREMENTS" | cut -c1-64)
	if [ "$(cat "$L_stamp" 2>/dev/null)" != "$want" ]; then
		echo "pyudf setup: installing $(basename "$REQUIREMENTS") into $L_venv" >&2
		"$L_python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS" >&2
		echo "$want" >"$L_stamp"
	fi
}

main() {
	local cmd=${1:-} python=${2:-python3}
	case $cmd in
	check) cmd_check "$python" ;;
	env) cmd_env "$python" ;;
	deps) cmd_deps "$python" ;;
	*)
		echo "usage: $0 check|env|deps PYTHON" >&2
		return 2
		;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
