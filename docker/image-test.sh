#!/usr/bin/env bash
# Runs the image that `make image` built, the way a user's container runtime
# would (buildah from + buildah run, chroot isolation: no Docker engine here),
# and checks what its default command prints and how it was set up:
# the non-root user, the embedded interpreter's virtualenv, the process mode.
# Prints the image size and the start-up time to the first result.
set -euo pipefail
IMAGE=${1:-localhost/pyudf:latest}

fail() { echo "image-test: $*" >&2; exit 1; }
buildah inspect --type image "$IMAGE" >/dev/null 2>&1 || fail "no image $IMAGE: run make image first"
ctr=$(buildah from --pull=never "$IMAGE")
trap 'buildah rm "$ctr" >/dev/null' EXIT
run() { buildah run --isolation=chroot "$ctr" -- "$@"; }

# The image's default command, as `docker run IMAGE` runs it; buildah run
# takes the command explicitly, so read it from the image's config.
cmd=$(buildah inspect --type image --format '{{.OCIv1.Config.Cmd}}' "$IMAGE")
[ "$cmd" = '[quickstart -udf /opt/pyudf/examples/quickstart/enrich.py]' ] || fail "default command is $cmd"
user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")
[ "$user" = pyudf ] || fail "the image runs as ${user:-root}, not as the pyudf user"

# Each line of output stamped as it arrives: the start-up time is the time
# from buildah run to the first enriched row.
log=$(mktemp); trap 'buildah rm "$ctr" >/dev/null; rm -f "$log"' EXIT
start=$(date +%s%N)
run quickstart -udf /opt/pyudf/examples/quickstart/enrich.py -events 2000 2>&1 |
	while IFS= read -r line; do printf '%s %s\n' "$(date +%s%N)" "$line"; done >"$log" ||
	{ cat "$log"; fail "the default command failed"; }
out=$(cut -d' ' -f2- "$log")
first=$(grep -m1 'category=' "$log" | cut -d' ' -f1)
[ -n "$first" ] || { echo "$out"; fail "no enriched row in the output"; }
first_ms=$(( (first - start) / 1000000 ))
echo "$out" | grep -q '^enriched 2000 events' || { echo "$out"; fail "the quickstart did not enrich 2000 events"; }

whoami=$(run id -un)
[ "$whoami" = pyudf ] || fail "commands run as $whoami"
# The engine embeds Debian's libpython with the virtualenv's packages.
pkgs=$(run /opt/pyudf/venv/bin/python -c 'import pandas, pyarrow, numpy, sys; print(sys.prefix, pandas.__version__ is not None)')
[ "$pkgs" = "/opt/pyudf/venv True" ] || fail "the virtualenv's packages: $pkgs"
proc=$(run quickstart -udf /opt/pyudf/examples/quickstart/enrich.py -events 500 -mode process 2>&1) || { echo "$proc"; fail "process mode failed"; }
echo "$proc" | grep -q '^enriched 500 events' || { echo "$proc"; fail "process mode did not enrich 500 events"; }

inspect=$(run pyudf inspect /opt/pyudf/examples/quickstart/enrich.py 2>&1) || { echo "$inspect"; fail "the pyudf CLI failed in the image"; }
echo "$inspect" | grep -q 'enrich' || { echo "$inspect"; fail "pyudf inspect did not list the enrich function"; }

size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1)
echo "image-test: $IMAGE passed: size $size; start-up to the first result ${first_ms} ms"
