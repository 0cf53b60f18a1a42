package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHotSwapEveryKey: a model version published on the control subject is
// served without a restart; every record after the switch, of every key,
// carries v2 and v2's prediction (checked against the v2 file directly),
// every record before it v1's; both UDFs. A new file that cannot be loaded
// is refused and v1 keeps serving. The switch logs no per-record warnings.
func TestHotSwapEveryKey(t *testing.T) {
	m1, m2 := models(t)
	corrupt := filepath.Join(t.TempDir(), "corrupt.joblib")
	if err := os.WriteFile(corrupt, []byte("not a joblib file"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.joblib")
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "row", true: "pandas"}[batch], func(t *testing.T) {
			e := newEnv(t)
			logs := &syncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			a, stop := start(t, e, Config{Model: m1, Batch: batch, Logger: log, FetchSize: 64})
			ctx := context.Background()

			before, goodBefore := generate(2, 400, 0)
			e.publish(t, before)
			waitFor(t, "the first records", func() bool { return a.Stats().Predicted == 400 })

			// Refused: the old model keeps serving.
			for _, p := range []string{corrupt, missing} {
				if err := PublishModel(ctx, e.js, "", p); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "two refusals", func() bool { return a.Stats().Refused == 2 })
			for _, p := range []string{corrupt, missing} {
				if !strings.Contains(logs.String(), p) {
					t.Fatalf("the refusal of %s is not logged with its file:\n%s", p, logs)
				}
			}
			between, goodBetween := generate(3, 200, 0)
			e.publish(t, between)
			waitFor(t, "the records after the refusals", func() bool { return a.Stats().Predicted == 600 })

			if err := PublishModel(ctx, e.js, "", m2); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the switch", func() bool { return a.Stats().Model == "v2" })
			after, goodAfter := generate(4, 600, 0) // 20 keys, every one of them many times
			e.publish(t, after)
			waitFor(t, "the records after the switch", func() bool { return a.Stats().Predicted == 1200 })

			got := e.outputs(t, 1200)
			eng := a.currentModel().Engine
			_, l1 := independent(t, eng, m1, append(goodBefore, goodBetween...))
			_, l2 := independent(t, eng, m2, goodAfter)
			check(t, got, append(goodBefore, goodBetween...), "v1", l1)
			check(t, got, goodAfter, "v2", l2)
			keys := map[string]bool{}
			for _, r := range goodAfter {
				keys[r.Key] = true
			}
			if len(keys) != 20 {
				t.Fatalf("the records after the switch cover %d keys, want all 20", len(keys))
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if st.Switches != 1 || st.Refused != 2 || strings.Join(st.ModelHistory, ",") != "v1,v2" {
				t.Fatalf("stats %+v", st)
			}
			if strings.Contains(logs.String(), "call failed") {
				t.Fatalf("the switch logged per-record failures:\n%s", logs)
			}
		})
	}
}

// TestHostileModelAtStartup: a model file that is missing, is not a joblib
// file, or is empty fails open() at start-up with a ModelLoadError naming
// the file; Run returns it; the engine path works afterwards.
func TestHostileModelAtStartup(t *testing.T) {
	m1, _ := models(t)
	dir := t.TempDir()
	corrupt, empty := filepath.Join(dir, "corrupt.joblib"), filepath.Join(dir, "empty.joblib")
	os.WriteFile(corrupt, []byte("\x80\x04garbage that is no pickle"), 0o644)
	os.WriteFile(empty, nil, 0o644)
	ctx := context.Background()
	cfg := engine.Config{CacheDir: testCache(t)}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.joblib"), "No such file or directory"},
		{corrupt, "not a joblib model file"},
		{empty, "not a joblib model file"},
	} {
		_, err := LoadModel(ctx, cfg, c.path, true)
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || !strings.HasSuffix(pe.Type, "ModelLoadError") ||
			!strings.Contains(err.Error(), "cannot load model file "+c.path) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("LoadModel(%s) = %v; want a ModelLoadError naming the file and %q", c.path, err, c.want)
		}
		e := newEnv(t)
		a, err := New(Config{Conn: e.nc, Model: c.path, Engine: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), c.path) {
			t.Fatalf("Run with %s = %v; want the file named", c.path, err)
		}
	}
	m, err := LoadModel(ctx, cfg, m1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.Function.Call(ctx, "r1", "u1", 5.1, 3.5, 1.4, 0.2)
	if err != nil || !strings.Contains(v.(string), `"species":"setosa"`) || !strings.Contains(v.(string), `"model_version":"v1"`) {
		t.Fatalf("after the failures: %v, %v", v, err)
	}
}

// TestHostileBadRecords: each kind of malformed record is a BadRecordError
// with its reason and field; through the app it is counted and logged once
// per reason.
func TestHostileBadRecords(t *testing.T) {
	for _, c := range []struct{ in, reason, field string }{
		{`not json`, ReasonNotJSON, ""},
		{`[1,2,3,4]`, ReasonNotJSON, ""},
		{`{"key":"u1","sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonMissing, "id"},
		{`{"id":"r1","key":"u1","sepal_length":1,"sepal_width":1,"petal_length":1}`, ReasonMissing, "petal_width"},
		{`{"id":"r1","key":"u1","sepal_length":null,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonMissing, "sepal_length"},
		{`{"id":"r1","key":"u1","sepal_length":1,"sepal_width":"wide","petal_length":1,"petal_width":1}`, ReasonNotNumeric, "sepal_width"},
		{`{"id":"r1","key":"u1","sepal_length":1,"sepal_width":1,"petal_length":true,"petal_width":1}`, ReasonNotNumeric, "petal_length"},
		{`{"id":42,"key":"u1","sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonBadField, "id"},
		{`{"id":"r1","key":["u1"],"sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonBadField, "key"},
		{`{"id":"","key":"u1","sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonBadField, "id"},
		{`{"id":"r1","key":"","sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonBadField, "key"},
		{`{"id":null,"key":"u1","sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1}`, ReasonMissing, "id"},
	} {
		_, err := ParseRecord([]byte(c.in))
		var be *BadRecordError
		if !errors.As(err, &be) || be.Reason != c.reason || be.Field != c.field {
			t.Errorf("ParseRecord(%s) = %v; want %s of field %q", c.in, err, c.reason, c.field)
		}
	}
	r, err := ParseRecord([]byte(`{"id":"r1","key":"u1","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"extra":1}`))
	if err != nil || r.Features != [4]float64{5.1, 3.5, 1.4, 0.2} {
		t.Fatalf("a good record after bad ones: %+v, %v", r, err)
	}

	logs := &syncBuffer{}
	a, err := New(Config{Conn: newEnv(t).nc, Model: "x", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		a.decode([]byte(`{"id":"r1"}`), nil)
		a.decode([]byte(`{"id":"r1","key":"u1","sepal_length":"x","sepal_width":1,"petal_length":1,"petal_width":1}`), nil)
	}
	if n := strings.Count(logs.String(), "bad record skipped"); n != 2 {
		t.Fatalf("%d log lines for 10 bad records of 2 reasons, want 2:\n%s", n, logs)
	}
	if st := a.Stats(); st.BadByReason[ReasonMissing] != 5 || st.BadByReason[ReasonNotNumeric] != 5 {
		t.Fatalf("%+v", st.BadByReason)
	}
}
