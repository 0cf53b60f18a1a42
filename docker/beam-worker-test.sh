#!/usr/bin/env bash
# Runs the Dockerfile's worker target (`make image-worker`) as a Beam Go SDK
# worker pool and a connect/beam pipeline against it, the way a portable runner
# uses an EXTERNAL environment: container 1 runs the image's entrypoint,
# /opt/apache/beam/boot --worker_pool (port 50000); container 2 runs the
# pipeline binary that the image's beam-build stage built (cgo, the image's
# libpython) as the launcher, on Prism in-process, with
#   --environment_type=EXTERNAL --environment_config=localhost:50000
#   --worker_binary=/usr/local/bin/pyudf-beam-orders
# Prism stages that binary as the job's artifact; boot, asked by Prism to start
# a worker, fetches it from Prism's artifact service and runs it; its DoFns run
# the scalar and the Pandas UDF, and passert checks their values in the job.
# The launcher's -require_external fails unless the UDFs ran in a process of
# the worker pool (not the launcher's). buildah's chroot isolation shares the
# host's network namespace: the two containers meet on the loopback address.
# Then, as a user's machine submits to a cluster, a second job to the same pool
# from a launcher built here on the host (go build, this machine's Python; the
# Makefile's environment) with the image's binary as --worker_binary.
# HOST_LAUNCHER=0 skips that job (no Go toolchain).
set -euo pipefail
IMAGE=${1:-localhost/pyudf-beam-worker:latest}
N=${N:-1000}   # orders; LOGS=DIR keeps the pool's and the launcher's logs
PORT=50000

REPO=$(cd "$(dirname "$0")/.." && pwd)

fail() { echo "beam-worker-test: $*" >&2; exit 1; }
buildah inspect --type image "$IMAGE" >/dev/null 2>&1 || fail "no image $IMAGE: run make image-worker first"
conf() { buildah inspect --type image --format "$1" "$IMAGE"; }
[ "$(conf '{{.OCIv1.Config.Entrypoint}}')" = '[/opt/apache/beam/boot]' ] ||
	fail "entrypoint is $(conf '{{.OCIv1.Config.Entrypoint}}'), not [/opt/apache/beam/boot]"
[ "$(conf '{{.OCIv1.Config.User}}')" = pyudf ] || fail "the image runs as $(conf '{{.OCIv1.Config.User}}'), not as pyudf"
conf '{{.OCIv1.Config.Env}}' | grep -q 'PYUDF_PYTHON=/opt/pyudf/venv/bin/python' || fail "PYUDF_PYTHON is not set to the virtualenv"
# boot listens on every address at this fixed port: it must be free.
if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then fail "port $PORT is in use: boot --worker_pool needs it"; fi

work=$(mktemp -d)
pool=$(buildah from --pull=never "$IMAGE")
launcher=""
poolpid=""
cleanup() {
	if [ -n "$poolpid" ]; then kill "$poolpid" 2>/dev/null || true; fi
	[ -z "${runpid:-}" ] || wait "$runpid" 2>/dev/null || true
	buildah rm "$pool" >/dev/null
	[ -z "$launcher" ] || buildah rm "$launcher" >/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
run() { local c=$1; shift; buildah run --isolation=chroot "$c" -- "$@"; }

[ "$(run "$pool" id -un)" = pyudf ] || fail "commands in the container do not run as pyudf"
# The pipeline binary loads the image's libpython (no rpath: Debian's default path).
ldd=$(run "$pool" ldd /usr/local/bin/pyudf-beam-orders)
echo "$ldd" | grep -q 'libpython3\.11\.so.* => /lib/x86_64-linux-gnu/\|libpython3\.11\.so.* => /usr/lib/' ||
	{ echo "$ldd"; fail "pyudf-beam-orders does not link the image's libpython3.11"; }

# check_report LOG: the launcher's report of a job of N orders run by this pool's workers.
check_report() {
	grep "^pyudf-beam-orders:" "$1"
	grep -q "^pyudf-beam-orders: $N orders: normalize_sku (scalar UDF) and order_total (Pandas UDF) results checked" "$1" ||
		{ cat "$1"; fail "the launcher did not report $N checked orders"; }
	local line
	line=$(grep '^pyudf-beam-orders: UDFs ran in Python pid' "$1") || fail "no report of where the UDFs ran"
	# The pool's PID is its BEAM_GO_WORKER_POOL_ID: the UDFs ran under this pool;
	# uid 10001 is the image's pyudf user: boot and the worker it starts run as it.
	echo "$line" | grep -q "($N of $N in the Go worker's own process), worker pool $poolpid, uid 10001..10001;" ||
		{ cat "$work/pool.log"; fail "the UDFs did not run in worker processes of pool $poolpid as pyudf: $line"; }
}

workers_before=$(pgrep -u 10001 -f -- '--worker=true' || true) # from an earlier run: not this test's
start=$(date +%s%N)
# The worker pool: the image's entrypoint with --worker_pool; the shell records
# boot's PID (chroot isolation: the host's PID namespace) so that it can be stopped.
buildah run --isolation=chroot "$pool" -- sh -c 'echo $$ >/tmp/pool.pid; exec /opt/apache/beam/boot --worker_pool' \
	>"$work/pool.log" 2>&1 &
runpid=$!
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
	kill -0 "$runpid" 2>/dev/null || { cat "$work/pool.log"; fail "boot --worker_pool exited"; }
	sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || { cat "$work/pool.log"; fail "boot --worker_pool does not listen on $PORT"; }
poolpid=$(buildah run --isolation=chroot "$pool" -- cat /tmp/pool.pid)

launcher=$(buildah from --pull=never "$IMAGE")
if ! run "$launcher" pyudf-beam-orders -n "$N" --worker_binary=/usr/local/bin/pyudf-beam-orders \
	--environment_type=EXTERNAL --environment_config=localhost:$PORT -require_external >"$work/launcher.log" 2>&1; then
	cat "$work/launcher.log" "$work/pool.log"
	fail "the pipeline failed against the worker pool"
fi
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_report "$work/launcher.log"
# boot started a worker for the job: Prism asked the pool (StartWorker) and boot
# ran the staged binary, which exited when the job ended.
grep -q 'starting worker' "$work/pool.log" || { cat "$work/pool.log"; fail "the pool started no worker"; }
# workers_exited N: the pool's log shows N workers that ended cleanly (within 10 s).
workers_exited() {
	for _ in $(seq 100); do
		[ "$(grep -c 'Worker exited successfully' "$work/pool.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	cat "$work/pool.log"; fail "the pool's log shows fewer than $1 workers that exited cleanly"
}
workers_exited 1
# no_worker_left: the pool's StopWorker kills the boot process that ran the
# worker, not the worker, and a Beam Go worker does not exit on its own; the
# worker (connect/beam, orphan.go) exits when its parent has gone. None of
# the image user's worker processes this test started may be left after 10 s.
our_workers() { pgrep -u 10001 -f -- '--worker=true' | grep -vxF -e "${workers_before:-none}" || true; }
no_worker_left() {
	local left
	for _ in $(seq 100); do
		left=$(our_workers)
		[ -n "$left" ] || return 0
		sleep 0.1
	done
	ps -o pid,ppid,etime,args -p "$(echo $left | tr ' ' ,)" || true
	kill -KILL $left 2>/dev/null || true
	fail "a worker process outlived its job (the pool stopped it, it did not exit)"
}
no_worker_left

host=""
if [ "${HOST_LAUNCHER:-1}" != 0 ]; then
	command -v go >/dev/null || fail "no go on PATH for the host launcher (HOST_LAUNCHER=0 skips it)"
	(cd "$REPO/connect/beam" && CGO_ENABLED=1 go build -o "$work/launcher" ./cmd/pyudf-beam-orders) ||
		fail "cannot build the host launcher (the Makefile's environment: make image-worker-test)"
	mnt=$(buildah mount "$pool")
	cp "$mnt/usr/local/bin/pyudf-beam-orders" "$work/worker"
	buildah umount "$pool" >/dev/null
	"$work/launcher" -n "$N" --worker_binary="$work/worker" --environment_type=EXTERNAL \
		--environment_config=localhost:$PORT -require_external >"$work/host-launcher.log" 2>&1 ||
		{ cat "$work/host-launcher.log" "$work/pool.log"; fail "the host launcher's job failed against the worker pool"; }
	check_report "$work/host-launcher.log"
	workers_exited 2
	no_worker_left
	host="; a second job from a host launcher passed"
fi

[ -z "${LOGS:-}" ] || { mkdir -p "$LOGS" && cp "$work"/*.log "$LOGS"/; }
size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1)
echo "beam-worker-test: $IMAGE passed: size $size; worker pool up to pipeline done ${elapsed_ms} ms ($N orders)$host"
