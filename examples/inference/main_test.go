package main

import (
	"bytes"

	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
	"github.com/pyudf/pyudf/examples/inference/app"
)

// TestMain runs the command itself when the test binary is re-executed as
// it (INFERENCE_TEST_ARGS holds its arguments, separated by newlines).
func TestMain(m *testing.M) { apptest.Main(m, "INFERENCE_TEST_ARGS", "inference", main) }

func command(ctx context.Context, args ...string) *exec.Cmd {
	return apptest.Command(ctx, "INFERENCE_TEST_ARGS", args...)
}

// cacheDir is the engine cache the module's tests share (see app's
// testCache): the repository's .deps/inference-cache, so that scikit-learn
// is installed once and the default models trained once.
func cacheDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", ".deps", "inference-cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// broker is an embedded nats-server with the input stream, for the
// command's -nats, and a connection to it.
func broker(t *testing.T) (jetstream.JetStream, string) {
	t.Helper()
	js := apptest.Broker(t, app.DefaultStream, app.DefaultSubject)
	return js, js.Conn().ConnectedUrl()
}

var summary = regexp.MustCompile(`inference: (\d+) records \((\d+) predicted, (\d+) bad\) in .* records/s end to end .*, models served \[([^]]*)\], (\d+) refused`)

// TestCommand: `go run .` on the defaults (v2 published half-way), on a
// server the test owns, predicts or dead-letters every generated record,
// prints the summary and exits 0; the predictions show both versions and a
// single cut-over per key.
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, url := broker(t)
	var stdout, stderr bytes.Buffer
	cmd := command(ctx, "-nats", url, "-cache-dir", cacheDir(t), "-records", "3000", "-bad-every", "500")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	m := summary.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no summary line:\n%s", stderr.String())
	}
	if m[1] != "3000" || m[2] != "2994" || m[3] != "6" || m[4] != "v1 v2" || m[5] != "0" {
		t.Errorf("summary %q: want 3000 records, 2994 predicted, 6 bad, models [v1 v2], 0 refused", m[0])
	}
	for _, want := range []string{"bad records, " + app.ReasonMissing + ": 3", "bad records, " + app.ReasonNotNumeric + ": 3"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	// Both versions predicted, and per key a single cut-over from v1 to v2
	// in the output stream.
	preds := predictions(t, js)
	byVersion := map[string]int{}
	for _, p := range preds {
		byVersion[p.version]++
	}
	t.Logf("predictions by version: %v", byVersion)
	if byVersion["v1"] == 0 || byVersion["v2"] == 0 || byVersion["v1"]+byVersion["v2"] != 2994 {
		t.Errorf("predictions by version %v: want v1 and v2, 2994 in all", byVersion)
	}
	// Not in input order: at least once, a record whose first publish failed
	// (a timeout under load) is redelivered after the switch and predicted by
	// v2, after later records of its key were predicted by v1.
	cutOver(t, "output stream order", preds)
}

// pred is a prediction in the output stream: its input's sequence, key and
// model version.
type pred struct {
	seq          uint64
	key, version string
}

// predictions reads the output subject's every message (State.Msgs of it), in stream order.
func predictions(t *testing.T, js jetstream.JetStream) []pred {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, app.DefaultOutputStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(app.DefaultOutput))
	if err != nil {
		t.Fatal(err)
	}
	n := info.State.Subjects[app.DefaultOutput]
	cons, err := js.OrderedConsumer(ctx, app.DefaultOutputStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{app.DefaultOutput}})
	if err != nil {
		t.Fatal(err)
	}
	var out []pred
	deadline := time.Now().Add(30 * time.Second)
	for uint64(len(out)) < n && time.Now().Before(deadline) {
		batch, err := cons.Fetch(int(min(n-uint64(len(out)), 5000)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var p struct {
				Key          string
				ModelVersion string `json:"model_version"`
			}
			seq, err := strconv.ParseUint(m.Headers().Get(runner.HeaderSeq), 10, 64)
			if err != nil || json.Unmarshal(m.Data(), &p) != nil {
				t.Fatalf("output %q %v", m.Data(), m.Headers())
			}
			out = append(out, pred{seq, p.Key, p.ModelVersion})
		}
	}
	if uint64(len(out)) != n {
		t.Fatalf("read %d of the output subject's %d messages", len(out), n)
	}
	return out
}

// cutOver fails if a key has a v1 prediction after a v2 one in preds' order.
func cutOver(t *testing.T, order string, preds []pred) {
	t.Helper()
	onV2 := map[string]uint64{}
	for _, p := range preds {
		if at, ok := onV2[p.key]; ok && p.version == "v1" {
			t.Fatalf("key %s: input %d got v1 after input %d got v2 (%s)", p.key, p.seq, at, order)
		} else if !ok && p.version == "v2" {
			onV2[p.key] = p.seq
		}
	}
}

// TestCommandBadModel: a -model that cannot be loaded is reported at once,
// exit 1, before any record is published.
func TestCommandBadModel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, url := broker(t)
	bad := filepath.Join(t.TempDir(), "missing.joblib")
	var stderr bytes.Buffer
	cmd := command(ctx, "-nats", url, "-cache-dir", cacheDir(t), "-model", bad, "-records", "20000")
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "cannot load model file "+bad) {
		t.Fatalf("%v, want exit 1 naming %s:\n%s", err, bad, stderr.String())
	}
	if n := streamInfo(t, js, app.DefaultStream).State.Msgs; n != 0 {
		t.Fatalf("%d records published before the bad model was reported, want 0", n)
	}
}

// TestCommandFlagErrors: a bad flag value is named, and the command exits 1
// before it starts anything.
func TestCommandFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "bogus"}, `inference: -mode "bogus": want thread or process`},
		{[]string{"-udf", "bogus"}, `inference: -udf "bogus": want pandas or row`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var stderr bytes.Buffer
		cmd := command(ctx, append([]string{"-cache-dir", t.TempDir()}, c.args...)...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%v: %v, want exit status 1\n%s", c.args, err, stderr.String())
		}
		if got := strings.TrimSpace(stderr.String()); got != c.want {
			t.Errorf("%v: stderr %q, want %q", c.args, got, c.want)
		}
	}
}

// TestCommandCtrlC: SIGINT mid-stream (-follow, on a server the test owns,
// sent as soon as the first inputs are acknowledged): the command exits 0,
// every input it acknowledged has its prediction or dead letter in the
// output stream, and a second run on the same durable finishes the rest:
// one output per input, none lost, none twice.
func TestCommandCtrlC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, url := broker(t)
	const badEvery = 1000
	cache := cacheDir(t)
	cmd := command(ctx, "-nats", url, "-cache-dir", cache, "-records", "10000", "-follow",
		"-bad-every", strconv.Itoa(badEvery))
	var log bytes.Buffer
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() { io.Copy(&log, stderr); close(read) }()
	var floor uint64
	for floor == 0 {
		select {
		case <-read:
			cmd.Wait()
			t.Fatalf("the command ended before it acknowledged anything\n%s", log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if c, err := js.Consumer(ctx, app.DefaultStream, app.DefaultDurable); err == nil {
			if ci, err := c.Info(ctx); err == nil {
				floor = ci.AckFloor.Stream
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-read
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, log.String())
	}
	m := summary.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no summary line:\n%s", log.String())
	}
	done, _ := strconv.Atoi(m[1])
	cons, err := js.Consumer(ctx, app.DefaultStream, app.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := streamInfo(t, js, app.DefaultStream).State.LastSeq // SIGINT may have cut the generator short
	outs, _ := outputs(t, js)
	t.Logf("SIGINT at ack floor %d: %d of %d records done, ack floor %d, %d outputs", floor, done, in, ci.AckFloor.Stream, len(outs))
	if done == 0 || uint64(done) >= in {
		t.Fatalf("%d of %d records done: want SIGINT mid-stream\n%s", done, in, log.String())
	}
	if len(outs) < done {
		t.Errorf("%d records done but %d inputs have outputs", done, len(outs))
	}
	for seq := uint64(1); seq <= ci.AckFloor.Stream; seq++ {
		if outs[seq] != 1 {
			t.Fatalf("input %d is acked (ack floor %d) but has %d outputs", seq, ci.AckFloor.Stream, outs[seq])
		}
	}

	// The rest, on the same durable: generate nothing, stop once all is acked.
	var stderr2 bytes.Buffer
	cmd = command(ctx, "-nats", url, "-cache-dir", cache, "-records", "0")
	cmd.Stderr = &stderr2
	if err := cmd.Run(); err != nil {
		t.Fatalf("second run: %v\n%s", err, stderr2.String())
	}
	if last := streamInfo(t, js, app.DefaultStream).State.LastSeq; last != in {
		t.Fatalf("the input stream holds %d records after the second run, %d before", last, in)
	}
	outs, dead := outputs(t, js)
	for seq := uint64(1); seq <= in; seq++ {
		if outs[seq] != 1 {
			t.Fatalf("after both runs input %d has %d outputs, want 1\n%s", seq, outs[seq], stderr2.String())
		}
	}
	if uint64(len(outs)) != in || uint64(dead) != in/badEvery {
		t.Errorf("%d inputs with outputs, %d dead letters; want %d, %d", len(outs), dead, in, in/badEvery)
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// outputs counts the predictions and dead letters in the output stream by
// the input sequence they answer, and the dead letters.
func outputs(t *testing.T, js jetstream.JetStream) (map[uint64]int, int) {
	t.Helper()
	ctx := context.Background()
	want := streamInfo(t, js, app.DefaultOutputStream).State.Msgs
	cons, err := js.OrderedConsumer(ctx, app.DefaultOutputStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got, dead := map[uint64]int{}, 0
	var n uint64
	deadline := time.Now().Add(30 * time.Second)
	for n < want {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of the output stream's %d messages", n, want)
		}
		batch, err := cons.Fetch(int(min(want-n, 5000)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			n++
			seq, err := strconv.ParseUint(m.Headers().Get(runner.HeaderSeq), 10, 64)
			if err != nil {
				t.Fatalf("output %q without its input's sequence: %v", m.Data(), m.Headers())
			}
			got[seq]++
			if m.Subject() == app.DefaultOutput+".dlq" {
				dead++
			}
		}
	}
	return got, dead
}
