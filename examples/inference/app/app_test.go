package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

// models v1 (logistic) and v2 (forest), trained once per test binary.
var (
	modelsOnce       sync.Once
	modelDir, v1, v2 string
	modelsErr        error
)

func models(t *testing.T) (string, string) {
	t.Helper()
	modelsOnce.Do(func() {
		modelDir, modelsErr = os.MkdirTemp("", "pyudf-inference-models-")
		if modelsErr != nil {
			return
		}
		v1, v2 = filepath.Join(modelDir, "v1.joblib"), filepath.Join(modelDir, "v2.joblib")
		cfg := engine.Config{CacheDir: testCache(t)}
		if _, modelsErr = Train(context.Background(), cfg, v1, "v1", "logistic"); modelsErr == nil {
			_, modelsErr = Train(context.Background(), cfg, v2, "v2", "forest")
		}
	})
	if modelsErr != nil {
		t.Fatal(modelsErr)
	}
	return v1, v2
}

func TestMain(m *testing.M) {
	code := m.Run()
	if modelDir != "" {
		os.RemoveAll(modelDir)
	}
	os.Exit(code)
}

// env is an embedded server with the app's streams.
type env struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	if err := EnsureStreams(context.Background(), js, Config{}); err != nil {
		t.Fatal(err)
	}
	return &env{js.Conn(), js}
}

// publish publishes payloads and returns the last stream sequence.
func (e *env) publish(t *testing.T, payloads [][]byte) uint64 {
	t.Helper()
	var last uint64
	for _, p := range payloads {
		ack, err := e.js.Publish(context.Background(), DefaultSubject, p)
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	return last
}

// prediction is one output record.
type prediction struct {
	ID, Key, Species string
	Label            int
	Score            float64
	ModelVersion     string `json:"model_version"`
}

// outputs reads every prediction in the output stream (all of the
// subject's messages, State.Msgs of it, so a late duplicate is read too),
// failing unless there are want of them, one per id.
func (e *env) outputs(t *testing.T, want int) map[string]prediction {
	t.Helper()
	got := map[string]prediction{}
	for _, p := range e.outputList(t) {
		if _, dup := got[p.ID]; dup {
			t.Fatalf("two predictions for %s", p.ID)
		}
		got[p.ID] = p
	}
	if len(got) != want {
		t.Fatalf("%d predictions, want %d", len(got), want)
	}
	return got
}

// outputCount is how many messages the output subject holds.
func (e *env) outputCount(t *testing.T) uint64 {
	t.Helper()
	st, err := e.js.Stream(context.Background(), DefaultOutputStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(DefaultOutput))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[DefaultOutput]
}

// outputList is every prediction in the output stream, in stream order.
func (e *env) outputList(t *testing.T) []prediction {
	t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, DefaultOutputStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(DefaultOutput))
	if err != nil {
		t.Fatal(err)
	}
	n := info.State.Subjects[DefaultOutput]
	cons, err := e.js.OrderedConsumer(ctx, DefaultOutputStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{DefaultOutput}})
	if err != nil {
		t.Fatal(err)
	}
	var out []prediction
	deadline := time.Now().Add(30 * time.Second)
	for uint64(len(out)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of the output subject's %d messages", len(out), n)
		}
		batch, err := cons.Fetch(int(min(n-uint64(len(out)), 1000)), jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var p prediction
			if err := json.Unmarshal(m.Data(), &p); err != nil {
				t.Fatalf("output %q: %v", m.Data(), err)
			}
			out = append(out, p)
		}
	}
	return out
}

// generate returns n payloads and the good records among them.
func generate(seed uint64, n, badEvery int) ([][]byte, []Record) {
	g := NewGenerator(seed)
	g.Keys = 20
	g.BadEvery = badEvery
	g.n = int(seed) * 100000 // ids unique across calls with different seeds
	var payloads [][]byte
	var good []Record
	for range n {
		p, bad := g.Next()
		payloads = append(payloads, p)
		if !bad {
			r, err := ParseRecord(p)
			if err != nil {
				panic(err)
			}
			good = append(good, r)
		}
	}
	return payloads, good
}

// independent predicts recs with the model file directly: the engine's
// interpreter run as a subprocess, with the engine's installed packages on
// its path, calling the estimator's own predict.
func independent(t *testing.T, eng *engine.Engine, model string, recs []Record) (string, map[string]int) {
	t.Helper()
	_, python := eng.Python()
	script := `
import json, sys
import joblib, numpy as np
saved = joblib.load(sys.argv[1])
recs = [json.loads(line) for line in sys.stdin]
X = np.array([[r[f] for f in saved["features"]] for r in recs], dtype=np.float64)
labels = saved["model"].predict(X)
print(json.dumps({"version": saved["version"], "labels": {r["id"]: int(l) for r, l in zip(recs, labels)}}))
`
	var in bytes.Buffer
	for _, r := range recs {
		in.Write(r.JSON())
		in.WriteByte('\n')
	}
	cmd := exec.Command(python, "-c", script, model)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+eng.Dependencies().RequirementsDir)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("independent prediction: %v", err)
	}
	var res struct {
		Version string
		Labels  map[string]int
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res.Version, res.Labels
}

// testEngine is an engine with the example's packages, for independent
// (the apps' engines are closed when Run returns).
func testEngine(t *testing.T) *engine.Engine {
	t.Helper()
	cfg, err := EngineConfig(engine.Config{CacheDir: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// start runs an app in the background; the returned func stops it and
// returns Run's error.
func start(t *testing.T, e *env, cfg Config) (*App, func() error) {
	t.Helper()
	a, stop, _ := startDone(t, e, cfg)
	return a, stop
}

// startDone is start, and a channel closed when Run returns (with the
// error that stop returns).
func startDone(t *testing.T, e *env, cfg Config) (*App, func() error, <-chan struct{}) {
	t.Helper()
	cfg.Conn = e.nc
	if cfg.Engine.CacheDir == "" {
		cfg.Engine.CacheDir = testCache(t)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = a.Run(ctx); close(done) }()
	stop := func() error { cancel(); <-done; return runErr }
	t.Cleanup(func() { stop() })
	return a, stop, done
}

// check asserts one prediction per good record, each the label the model
// file predicts directly, with the model's version and the species name.
func check(t *testing.T, got map[string]prediction, recs []Record, version string, labels map[string]int) {
	t.Helper()
	names := []string{"setosa", "versicolor", "virginica"}
	for _, r := range recs {
		p, ok := got[r.ID]
		if !ok {
			t.Fatalf("no prediction for %s", r.ID)
		}
		if p.Key != r.Key || p.ModelVersion != version || p.Label != labels[r.ID] || p.Species != names[p.Label] || p.Score <= 0.3 || p.Score > 1 {
			t.Fatalf("%s: got %+v, want key %s, version %s, label %d", r.ID, p, r.Key, version, labels[r.ID])
		}
	}
}

// TestEndToEnd: both UDFs (row in thread mode, Pandas in thread and
// process mode) predict every good record as the model file does directly,
// bad records are dead-lettered and counted by reason, and Run returns at
// StopAt.
func TestEndToEnd(t *testing.T) {
	m1, _ := models(t)
	for _, c := range []struct {
		name  string
		mode  engine.Mode
		batch bool
	}{{"row-thread", engine.Thread, false}, {"pandas-thread", engine.Thread, true}, {"pandas-process", engine.Process, true}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			payloads, good := generate(1, 500, 50)
			last := e.publish(t, payloads)
			a, err := New(Config{Conn: e.nc, Model: m1, Batch: c.batch, Engine: engine.Config{Mode: c.mode, Workers: 2, CacheDir: testCache(t)},
				StopAt: last, FetchSize: 128})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- a.Run(context.Background()) }() // no cancel: Run returns at StopAt
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(90 * time.Second):
				t.Fatalf("Run has not returned at StopAt (%d): stats %+v", last, a.Stats())
			}
			got := e.outputs(t, len(good))
			version, labels := independent(t, testEngine(t), m1, good)
			if version != "v1" {
				t.Fatalf("model file version %q", version)
			}
			check(t, got, good, "v1", labels)
			st := a.Stats()
			if st.Predicted != int64(len(good)) || st.Bad != 10 || st.BadByReason[ReasonMissing] != 5 || st.BadByReason[ReasonNotNumeric] != 5 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}
