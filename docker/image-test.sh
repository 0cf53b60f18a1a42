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
[ "$cmd" = '[cdn]' ] || fail "default command is $cmd, not the CDN application"
user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")
[ "$user" = pyudf ] || fail "the image runs as ${user:-root}, not as the pyudf user"

# stamped CMD...: runs CMD in the container with each output line stamped
# (ns) as it arrives, into $log; the start is stamped in $start.
log=$(mktemp); trap 'buildah rm "$ctr" >/dev/null; rm -f "$log"' EXIT
stamped() {
	start=$(date +%s%N)
	run "$@" 2>&1 | while IFS= read -r line; do printf '%s %s\n' "$(date +%s%N)" "$line"; done >"$log" ||
		{ cut -d' ' -f2- "$log"; fail "$* failed"; }
	out=$(cut -d' ' -f2- "$log")
}

# The default command on its embedded defaults: 100,000 generated log lines
# through JetStream and the UDF into ~/cdn.db. The table is then read back
# with the image's Python (sqlite3): every good line counted once, every bad
# one under its reason, nothing else.
stamped cdn
summary=$(echo "$out" | grep -m1 '^cdn: [0-9]* records (') || { echo "$out"; fail "the CDN application printed no summary"; }
read -r records bad < <(echo "$summary" | sed -E 's/^cdn: ([0-9]+) records \(([0-9]+) bad\).*/\1 \2/')
[ "$records" = 100000 ] || { echo "$out"; fail "the CDN application read $records lines, not 100000"; }
echo "$out" | grep -q '^province  *access_count' || { echo "$out"; fail "no statistics table in the output"; }
table=$(run /opt/pyudf/venv/bin/python -c '
import sqlite3
db = sqlite3.connect("/home/pyudf/cdn.db")
good = db.execute("select sum(access_count), count(*) from cdn_access_statistic").fetchone()
bad = db.execute("select sum(count) from cdn_bad_record").fetchone()[0]
print(good[0], bad, good[1])')
read -r good dbbad provinces <<<"$table"
[ "$dbbad" = "$bad" ] && [ $((good + dbbad)) = "$records" ] ||
	fail "cdn_access_statistic holds $good lines and cdn_bad_record $dbbad, for $records read ($bad bad)"
[ "$provinces" -gt 20 ] || fail "only $provinces provinces in cdn_access_statistic"
cdn_rate=$(echo "$summary" | sed -E 's/.* ([0-9]+) records\/s end to end.*/\1/')

# Start-up to the first result: a container start to the first committed
# statistics of a small run (1,000 lines), in thread and in process mode.
stamped cdn -records 1000
first=$(grep -m1 ' cdn: [0-9]* records (' "$log" | cut -d' ' -f1)
first_ms=$(( (first - start) / 1000000 ))
stamped cdn -records 1000 -mode process
echo "$out" | grep -q '^cdn: 1000 records (' || { echo "$out"; fail "the CDN application in process mode"; }
first=$(grep -m1 ' cdn: [0-9]* records (' "$log" | cut -d' ' -f1)
first_proc_ms=$(( (first - start) / 1000000 ))

# The other two applications on their defaults (shorter runs). The inference
# application finds scikit-learn and its models where the image build put
# them (inference -prepare): it neither runs pip nor trains at start.
stamped features -records 20000
echo "$out" | grep -q '^features: 20000 records (' || { echo "$out"; fail "the features application did not read its 20000 events"; }
echo "$out" | grep -q 'feature_sample: [1-9][0-9]* samples' || { echo "$out"; fail "the features application wrote no samples"; }
reqs() { run sh -c 'ls -d "$PYUDF_CACHE_DIR"/requirements/*/ 2>/dev/null'; }
before=$(reqs)
[ -n "$before" ] || fail "no requirements install in \$PYUDF_CACHE_DIR: the image's inference -prepare did not run"
stamped inference
[ "$(reqs)" = "$before" ] || fail "the inference application ran pip at start (requirements now: $(reqs))"
echo "$out" | grep -q '^inference: 20000 records (.* models served \[v1 v2\]' || { echo "$out"; fail "the inference application did not serve models v1 and v2 over its 20000 records"; }
if echo "$out" | grep -q 'training the default model'; then echo "$out"; fail "the inference application trained at start: the image's -prepare did not take"; fi

# The quickstart, in both modes.
stamped quickstart -udf /opt/pyudf/examples/quickstart/enrich.py -events 2000
echo "$out" | grep -q '^enriched 2000 events' || { echo "$out"; fail "the quickstart did not enrich 2000 events"; }
stamped quickstart -udf /opt/pyudf/examples/quickstart/enrich.py -events 500 -mode process
echo "$out" | grep -q '^enriched 500 events' || { echo "$out"; fail "the quickstart in process mode did not enrich 500 events"; }

whoami=$(run id -un)
[ "$whoami" = pyudf ] || fail "commands run as $whoami"
# The engine embeds Debian's libpython with the virtualenv's packages.
pkgs=$(run /opt/pyudf/venv/bin/python -c 'import pandas, pyarrow, numpy, sys; print(sys.prefix, pandas.__version__ is not None)')
[ "$pkgs" = "/opt/pyudf/venv True" ] || fail "the virtualenv's packages: $pkgs"

inspect=$(run pyudf inspect /opt/pyudf/examples/quickstart/enrich.py 2>&1) || { echo "$inspect"; fail "the pyudf CLI failed in the image"; }
echo "$inspect" | grep -q 'enrich' || { echo "$inspect"; fail "pyudf inspect did not list the enrich function"; }

size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1)
echo "image-test: $IMAGE passed: size $size; the CDN application ${cdn_rate} records/s end to end (100,000 lines);"
echo "image-test: start-up to the first result (1,000 lines committed): ${first_ms} ms in thread mode, ${first_proc_ms} ms in process mode"
