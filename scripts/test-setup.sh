#!/usr/bin/env bash
# Tests of scripts/setup-python.sh: each missing piece of an interpreter (too old, static,
# no libpython, no headers, no pkg-config file, no venv module, not CPython, not Python at
# all) gives one line naming it and its fix, Debian's packages are apt-get installed as
# root (a stand-in apt-get records the calls) and only named when not root, make stops
# with that line (no pkg-config or linker error), and a real interpreter passes. With
# PYUDF_PYTHON set (make test-scripts sets it), embedcheck then shows the engine using the
# project virtualenv's site-packages in thread and process mode.
set -uo pipefail
cd "$(dirname "$0")/.."
SETUP=scripts/setup-python.sh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export DEPS_DIR=$TMP/deps APT_GET=$TMP/bin/apt-get
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; shift; printf '%s\n' "$@" | sed 's/^/     /'; }

# A complete, shared CPython 3.11 installation's files, for the fakes to point at.
mkdir -p "$TMP/py/lib/pkgconfig" "$TMP/py/include/python3.11" "$TMP/bin"
touch "$TMP/py/lib/libpython3.11.so" "$TMP/py/include/python3.11/Python.h" "$TMP/py/lib/pkgconfig/python-3.11-embed.pc"
# The stand-in apt-get records its arguments.
printf '#!/bin/sh\necho "$*" >>%s/apt.log\n' "$TMP" >"$APT_GET"
chmod +x "$APT_GET"

# fake NAME KEY=VALUE...: an interpreter whose probe answers a complete shared 3.11
# installation under $TMP/py, except for the KEY=VALUE given.
fake() {
	local name=$1 f=$TMP/bin/$1
	shift
	{
		echo '#!/bin/sh'
		echo 'cat <<EOF'
		printf '%s\n' "exe=$f" "base_exe=$f" impl=CPython version=3.11 full=3.11.9 venv=0 \
			"prefix=$TMP/py" "base_prefix=$TMP/py" shared=1 "libdir=$TMP/py/lib" \
			ldlibrary=libpython3.11.so "libpc=$TMP/py/lib/pkgconfig" \
			"include=$TMP/py/include/python3.11" venv_module=1 "$@"
		echo 'EOF'
	} >"$f"
	chmod +x "$f"
	echo "$f"
}

# expect NAME COMMAND... -- PATTERN...: COMMAND fails, and prints exactly one line, which
# matches every PATTERN (grep -E).
expect_line() {
	local name=$1 out rc pat
	shift
	local cmd=()
	while [ "$1" != -- ]; do cmd+=("$1"); shift; done
	shift
	out=$("${cmd[@]}" 2>&1)
	rc=$?
	if [ $rc = 0 ]; then bad "$name" "exit 0, want failure" "$out"; return; fi
	if [ "$(printf '%s\n' "$out" | wc -l)" != 1 ]; then bad "$name" "want one line, got:" "$out"; return; fi
	for pat in "$@"; do
		if ! grep -qE -- "$pat" <<<"$out"; then bad "$name" "no /$pat/ in:" "$out"; return; fi
	done
	ok "$name: $out"
}

good=$(fake good)
if out=$($SETUP check "$good" 2>&1); then ok "a complete shared CPython 3.11 passes"; else bad "complete fake" "$out"; fi

expect_line "too old" $SETUP check "$(fake py39 version=3.9 full=3.9.18)" -- \
	'is Python 3\.9\.18; pyudf needs CPython 3\.10 or newer' 'Fix: make PYTHON='
expect_line "python 2" $SETUP check "$(fake py27 version=2.7 full=2.7.18)" -- 'is Python 2\.7\.18'
expect_line "static build" $SETUP check "$(fake static shared=0)" -- \
	'is a static build of Python 3\.11\.9: no shared libpython3\.11\.so' 'Fix: rebuild .*--enable-shared'
pyenvdir=$TMP/.pyenv/versions/3.11.9/bin
mkdir -p "$pyenvdir"
expect_line "static pyenv build" $SETUP check "$(fake pyenvstatic shared=0 "base_exe=$pyenvdir/python3.11")" -- \
	'Fix: env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force 3\.11\.9'
expect_line "no libpython" $SETUP check "$(fake nolib ldlibrary=libpython3.11-missing.so)" -- \
	'no shared libpython for .*libpython3\.11-missing\.so is missing' 'Fix: reinstall Python 3\.11\.9 with its development files'
expect_line "no headers" $SETUP check "$(fake nohdr "include=$TMP/nowhere")" -- \
	"no Python headers .*$TMP/nowhere/Python\.h is missing" 'Fix: reinstall'
expect_line "no pkg-config file" $SETUP check "$(fake nopc "libpc=$TMP/nowhere")" -- \
	"no pkg-config file .*$TMP/nowhere/python-3\.11-embed\.pc is missing" 'Fix: reinstall'
expect_line "no venv module" $SETUP check "$(fake novenv venv_module=0)" -- \
	'no venv module for .*Fix: reinstall Python 3\.11\.9 with its venv and ensurepip modules'
if out=$($SETUP check "$(fake venvnovenv venv_module=0 venv=1)" 2>&1); then
	ok "a virtualenv's interpreter needs no venv module"
else bad "virtualenv without venv module" "$out"; fi
expect_line "not CPython" $SETUP check "$(fake pypy impl=PyPy full=7.3.17)" -- 'is PyPy 7\.3\.17, not CPython'
printf '#!/bin/sh\nexit 3\n' >"$TMP/bin/broken" && chmod +x "$TMP/bin/broken"
expect_line "not a Python" $SETUP check "$TMP/bin/broken" -- "PYTHON=$TMP/bin/broken is not a working Python interpreter"
expect_line "no such file" $SETUP check "$TMP/bin/none" -- "is not a working Python interpreter"
if [ -z "$($SETUP env "$TMP/bin/broken")" ]; then ok "env prints nothing for an interpreter that does not run"; else bad "env of broken" "printed something"; fi
# What make reads before make deps runs stays the same when deps apt-gets the missing pieces.
nohdr_env=$($SETUP env "$TMP/bin/nohdr")
h=$(printf %s "$TMP/bin/nohdr" | sha256sum | cut -c1-8)
if [ "$nohdr_env" = "$DEPS_DIR/venv-3.11-$h/bin/python 3.11 $DEPS_DIR/pc-3.11-$h $TMP/py/lib $TMP/bin/nohdr" ]; then
	ok "env gives the layout of an interpreter missing its headers (make deps decides)"
else bad "env of nohdr" "$nohdr_env"; fi

# Debian's interpreter (base prefix /usr) missing python3-dev and python3-venv.
if [ -f /etc/debian_version ]; then
	deb=$(fake debian base_prefix=/usr "prefix=/usr" "include=$TMP/nowhere" venv_module=0)
	def=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
	if [ "$def" = 3.11 ]; then dev=python3-dev venv=python3-venv; else dev=python3.11-dev venv=python3.11-venv; fi
	if [ "$(id -u)" = 0 ]; then
		rm -f "$TMP/apt.log"
		out=$($SETUP deps "$deb" 2>&1)
		rc=$?
		log=$(cat "$TMP/apt.log" 2>/dev/null)
		if [ $rc != 0 ] && [ "$log" = "update -q
install -y -q $dev $venv" ] && grep -q "installing Debian's $dev $venv for" <<<"$out" &&
			grep -q "no Python headers .*Fix: apt-get install -y $dev" <<<"$out" &&
			grep -q "no venv module .*Fix: apt-get install -y $venv" <<<"$out"; then
			ok "Debian as root: apt-get update, apt-get install $dev $venv, then names what is still missing"
		else bad "Debian as root" "rc=$rc apt-get calls:" "$log" "output:" "$out"; fi
	fi
	if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
		rm -f "$TMP/apt.log"
		chmod -R a+rX "$TMP"
		out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env DEPS_DIR="$TMP/deps-nobody" \
			APT_GET="$APT_GET" bash $SETUP deps "$deb" 2>&1)
		rc=$?
		if [ $rc != 0 ] && [ ! -e "$TMP/apt.log" ] && grep -q "not root, so not installing Debian's $dev $venv" <<<"$out" &&
			grep -q "Fix: sudo apt-get install -y $dev" <<<"$out" && grep -q "Fix: sudo apt-get install -y $venv" <<<"$out"; then
			ok "Debian, not root: no apt-get, the sudo apt-get commands named"
		else bad "Debian, not root" "rc=$rc output:" "$out"; fi
	fi
fi

# make itself stops at the set-up's line, before any pkg-config or linker error.
out=$(make --no-print-directory build PYTHON="$(fake py39make version=3.9 full=3.9.18)" 2>&1)
if [ $? != 0 ] && grep -q 'pyudf setup: .* is Python 3\.9\.18; pyudf needs CPython 3\.10' <<<"$out" &&
	! grep -qiE 'pkg-config|ld:|cgo' <<<"$out"; then
	ok "make build PYTHON=<3.9> stops with the set-up's line"
else bad "make build with 3.9" "$out"; fi

# The real interpreter: it passes, and a virtualenv's interpreter is used as it is.
real=${PYTHON:-python3}
if out=$($SETUP check "$real" 2>&1); then ok "$real passes the checks"; else bad "real $real" "$out"; fi
read -r -a fields <<<"$($SETUP env "$real")"
if [ ${#fields[@]} = 5 ]; then
	venv=$TMP/user-venv
	if "${fields[4]}" -m venv --without-pip "$venv" 2>/dev/null; then
		read -r -a vf <<<"$($SETUP env "$venv/bin/python")"
		if [ "${vf[0]:-}" = "$venv/bin/python" ] && [ "${vf[1]}" = "${fields[1]}" ] && [ "${vf[3]}" = "${fields[3]}" ]; then
			ok "an existing virtualenv's interpreter is used as it is, linked against its base"
		else bad "existing virtualenv" "env: ${vf[*]:-}" "base: ${fields[*]}"; fi
	else bad "existing virtualenv" "cannot make one from ${fields[4]}"; fi
else bad "env of $real" "${fields[*]:-}"; fi

# make doctor: every row for the real interpreter; the missing piece and exit 1 for 3.9.
out=$(DEPS_DIR=$PWD/.deps scripts/doctor.sh "$real" 2>&1)
rc=$?
missing_rows=$(for r in interpreter version libpython headers pkg-config virtualenv packages go java pyenv; do
	grep -q "^$r " <<<"$out" || echo "$r"; done)
if [ $rc = 0 ] && [ -z "$missing_rows" ] && grep -q "^doctor: ready" <<<"$out"; then
	ok "doctor $real: a row each for interpreter, version, libpython, headers, pkg-config, virtualenv, packages, go, java, pyenv"
else bad "doctor $real" "rc=$rc, rows missing: $missing_rows" "$out"; fi
out=$(scripts/doctor.sh "$(fake py39doc version=3.9 full=3.9.18)" 2>&1)
if [ $? = 1 ] && grep -q "^missing .*is Python 3\.9\.18; pyudf needs CPython 3\.10" <<<"$out" && grep -q "^doctor: 1 problem" <<<"$out"; then
	ok "doctor names a 3.9 as the one problem and exits 1"
else bad "doctor of 3.9" "$out"; fi

if [ -n "${PYUDF_PYTHON:-}" ]; then
	if out=$(go run ./scripts/embedcheck 2>&1); then
		ok "the engine embeds the base libpython with the virtualenv's packages:"
		sed 's/^/     /' <<<"$out"
	else bad "embedcheck" "$out"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
