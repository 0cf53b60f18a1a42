package pyudfbeam

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

// A Beam Go worker does not exit when its job is done: Beam's worker init
// (core/runtime/harness/init) prints "Worker exited successfully!" when the
// harness returns and then sleeps until something kills the process. Run by
// a container runtime, the container ends and takes the worker with it. Run
// by a worker pool (`boot --worker_pool`, an EXTERNAL environment: the worker
// image's entrypoint), StopWorker kills the boot process that started the
// worker and not the worker, which then lives on, reparented, with its
// interpreter and the job's modules (about 160 MB per job). So a worker
// process, from its first Setup, watches its parent, and when the parent has
// gone it closes its engines and exits.

// orphanPoll is how often the watch looks at the parent process.
const orphanPoll = 500 * time.Millisecond

var watchOnce sync.Once

// watchIfWorker starts the parent watch once, in a Beam worker process
// (the harness's -worker flag set) only: a launcher or a test that runs the
// pipeline in its own process is left alone.
func watchIfWorker() {
	f := flag.Lookup("worker")
	if f == nil || f.Value.String() != "true" {
		return
	}
	watchOnce.Do(func() { go watchParent(orphanPoll, exitOrphaned) })
}

// watchParent calls orphaned once this process's parent is no longer the one
// it had when the watch started.
func watchParent(poll time.Duration, orphaned func(parent int)) {
	parent := os.Getppid()
	for {
		time.Sleep(poll)
		if os.Getppid() != parent {
			orphaned(parent)
			return
		}
	}
}

// exitOrphaned closes the process's engines (their worker processes, in
// process mode, with them) and exits.
func exitOrphaned(parent int) {
	fmt.Fprintf(os.Stderr, "pyudfbeam: the process that started this worker (pid %d) has ended: closing the engines and exiting\n", parent)
	done := make(chan struct{})
	go func() {
		closeAll()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "pyudfbeam: the engines did not close within 10 s: exiting anyway")
	}
	os.Exit(0)
}

// closeAll closes every engine of the process, whatever holds it.
func closeAll() {
	shared.Lock()
	defer shared.Unlock()
	for key, se := range shared.engines {
		se.engine.Close()
		delete(shared.engines, key)
	}
}
