package pyudfbeam

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// orphanChild is TestOrphanedWorkerExits's worker: it opens a UDF (so an
// engine is running), starts the parent watch, says so and waits.
func orphanChild() {
	_, fn, err := openFunction(context.Background(), UDF{Source: udfSource, Function: "upper"})
	if err == nil {
		_, err = fn.Call(context.Background(), "x")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	go watchParent(50*time.Millisecond, exitOrphaned)
	fmt.Println("ready")
	select {}
}

// TestOrphanedWorkerExits: a worker whose parent process ends (as a worker
// pool's StopWorker kills the boot process that started it) closes its
// engines and exits; while the parent lives, it stays.
func TestOrphanedWorkerExits(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stderr := filepath.Join(t.TempDir(), "stderr")
	parent := exec.Command("sh", "-c", `"$0" -test.run=XXX 2>"$1" & echo $!; exec sleep 60`, exe, stderr)
	parent.Env = append(os.Environ(), "PYUDFBEAM_TEST_ORPHAN=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	lines := bufio.NewScanner(out)
	var pid int
	if lines.Scan() {
		pid, _ = strconv.Atoi(lines.Text())
	}
	if pid <= 0 || !lines.Scan() || lines.Text() != "ready" {
		b, _ := os.ReadFile(stderr)
		t.Fatalf("the worker did not start (pid %d, %q): %s", pid, lines.Text(), b)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)

	time.Sleep(300 * time.Millisecond) // six polls with the parent alive
	if !running(pid) {
		b, _ := os.ReadFile(stderr)
		t.Fatalf("the worker exited while its parent lives: %s", b)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker (pid %d) still runs 10 s after its parent ended", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(stderr)
	if want := fmt.Sprintf("the process that started this worker (pid %d) has ended", parent.Process.Pid); !strings.Contains(string(b), want) {
		t.Errorf("the worker's stderr does not say %q: %s", want, b)
	}
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
