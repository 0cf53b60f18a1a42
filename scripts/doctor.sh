#!/usr/bin/env bash
# make doctor: what the build would use for PYTHON and what is missing, one line each:
# interpreter, version, libpython, headers, pkg-config file, virtualenv, packages, Go, Java
# and Maven (for the anchors), pyenv's versions (for test-matrix). Changes nothing.
# Exits 1 when something the build needs is missing (the anchors' Java and Maven are optional).
set -uo pipefail
# shellcheck source=setup-python.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-python.sh"
set +e

PYTHON_ARG=${1:-python3}
problems=0
row() { printf '%-12s %s\n' "$1" "$2"; }
problem() { row "$1" "$2"; problems=$((problems + 1)); }
have() { [ -e "$1" ] && echo "$1" || echo "MISSING: $1"; }

if ! probe "$PYTHON_ARG"; then
	problem interpreter "PYTHON=$PYTHON_ARG is not a working Python interpreter"
else
	layout
	row interpreter "PYTHON=$PYTHON_ARG -> $P_exe"
	row version "$P_impl $P_full$([ "$P_venv" = 1 ] && echo ", a virtualenv of $P_base_exe")"
	if [ "$P_shared" = 1 ]; then
		row libpython "$(have "$P_libdir/$P_ldlibrary") (shared)"
	else
		row libpython "none: a static build"
	fi
	[ -n "$P_include" ] && row headers "$(have "$P_include/Python.h")"
	[ -n "$P_libpc" ] && row pkg-config "$(have "$L_pcfile")"
	if [ "$P_venv" = 1 ]; then
		row virtualenv "$L_venv (PYTHON's own, used as it is)"
	elif "$L_python" -c '' 2>/dev/null; then
		row virtualenv "$L_venv (the project's, made from $P_exe)"
	else
		row virtualenv "$L_venv (not made yet: make deps makes it)"
	fi
	lines=$(missing)
	if [ -n "$lines" ]; then
		while IFS= read -r line; do problem missing "${line%%|*}. Fix: ${line#*|}"; done <<<"$lines"
	fi
	if "$L_python" -c '' 2>/dev/null; then
		pkgs=$("$L_python" - <<-'EOF' 2>/dev/null
			import importlib.metadata as m
			out = []
			for name in ("numpy", "pandas", "pyarrow", "pytest", "cffi"):
			    try:
			        out.append("%s %s" % (name, m.version(name)))
			    except m.PackageNotFoundError:
			        out.append("%s MISSING" % name)
			print(", ".join(out))
		EOF
		)
		row packages "${pkgs:-cannot list them}"
		case $pkgs in *MISSING*) problems=$((problems + 1)) ;; esac
		stamp=$(cat "$L_stamp" 2>/dev/null)
		want=$(sha256sum <"$REQUIREMENTS" | cut -c1-64)
		[ "$stamp" = "$want" ] || row requirements "$(basename "$REQUIREMENTS") changed since the last install: make deps installs it"
	fi
	[ -z "$lines" ] && row embedding "PKG_CONFIG_PATH=$L_pcdir CGO_LDFLAGS=-Wl,-rpath,$P_libdir PYUDF_PYTHON=$L_python"
fi

if command -v go >/dev/null; then row go "$(go version)"; else problem go "MISSING: Go (https://go.dev/dl, or apt-get install golang)"; fi
if command -v java >/dev/null; then
	row java "$(java -version 2>&1 | head -n 1) (for make bench-anchors, test-pyflink)"
else
	row java "not found (only make bench-anchors and test-pyflink need it: apt-get install openjdk-17-jdk-headless)"
fi
if command -v mvn >/dev/null; then
	row maven "$(mvn -v 2>/dev/null | head -n 1 | sed 's/\x1b\[[0-9;]*m//g') (for the PEMJA anchor)"
else
	row maven "not found (only the PEMJA anchor needs it: apt-get install maven)"
fi
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
versions=$(ls "$root/versions" 2>/dev/null | sort -V | xargs)
row pyenv "${versions:-none} (make test-matrix runs each of MATRIX, /usr/bin/python3 and a virtualenv)"

if [ $problems != 0 ]; then
	echo "doctor: $problems problem(s) above"
	exit 1
fi
echo "doctor: ready (make demo, make test)"
