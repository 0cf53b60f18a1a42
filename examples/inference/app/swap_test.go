package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

// TestHotSwapEveryKey: a model version published on the control subject is
// served without a restart, while records keep coming (some are in flight
// when the switch drains the old runner): exactly one prediction per input,
// each with the label its own version's file predicts directly, both
// versions serving, and per key a single cut-over in the output stream (no
// v1 after a v2). Both UDFs. A new file
// that cannot be loaded is refused and v1 keeps serving. The switch logs no
// per-record warnings.
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
			logs := &apptest.SyncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			a, stop := start(t, e, Config{Model: m1, Batch: batch, Logger: log, FetchSize: 64})
			ctx := context.Background()

			before, goodBefore := generate(2, 400, 0)
			e.publish(t, before)
			apptest.WaitFor(t, "the first records", func() bool { return a.Stats().Predicted == 400 })

			// Refused: the old model keeps serving.
			for _, p := range []string{corrupt, missing} {
				if err := PublishModel(ctx, e.js, "", p); err != nil {
					t.Fatal(err)
				}
			}
			apptest.WaitFor(t, "two refusals", func() bool { return a.Stats().Refused == 2 })
			for _, p := range []string{corrupt, missing} {
				if !strings.Contains(logs.String(), p) {
					t.Fatalf("the refusal of %s is not logged with its file:\n%s", p, logs)
				}
			}
			between, goodBetween := generate(3, 200, 0)
			e.publish(t, between)
			apptest.WaitFor(t, "the records after the refusals", func() bool { return a.Stats().Predicted == 600 })

			// Published continuously, 10 every 5ms; v2 after the first 300,
			// the rest going on during its load and the drain.
			across, goodAcross := generate(4, 2000, 0) // 20 keys, every one of them many times
			for i := 0; i < len(across); i += 10 {
				if i == 300 {
					if err := PublishModel(ctx, e.js, "", m2); err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range across[i : i+10] {
					if _, err := e.js.PublishAsync(DefaultSubject, p); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			<-e.js.PublishAsyncComplete()
			apptest.WaitFor(t, "every record", func() bool { return a.Stats().Predicted == 2600 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			all := append(append(goodBefore, goodBetween...), goodAcross...)
			got := e.outputs(t, len(all)) // one per input, no duplicate
			eng := testEngine(t)
			_, l1 := independent(t, eng, m1, all)
			_, l2 := independent(t, eng, m2, all)
			check(t, got, append(goodBefore, goodBetween...), "v1", l1)
			byVersion := map[string]int{}
			for _, r := range goodAcross {
				p := got[r.ID]
				byVersion[p.ModelVersion]++
				labels := map[string]map[string]int{"v1": l1, "v2": l2}[p.ModelVersion]
				if labels == nil {
					t.Fatalf("%s: version %q", r.ID, p.ModelVersion)
				}
				check(t, got, []Record{r}, p.ModelVersion, labels)
			}
			if byVersion["v1"] == 0 || byVersion["v2"] == 0 {
				t.Fatalf("records across the switch by version %v: want both", byVersion)
			}
			cutOver := func(order string, seq []prediction) {
				onV2 := map[string]string{}
				for _, p := range seq {
					if p.ModelVersion == "v2" && onV2[p.Key] == "" {
						onV2[p.Key] = p.ID
					} else if p.ModelVersion == "v1" && onV2[p.Key] != "" {
						t.Fatalf("key %s: %s got v1 after %s got v2 (%s)", p.Key, p.ID, onV2[p.Key], order)
					}
				}
				if len(onV2) != 20 {
					t.Fatalf("%d keys reached v2, want all 20", len(onV2))
				}
			}
			// In the output stream's order only: a record redelivered after the
			// switch (its first publish failed) is predicted by v2 after later
			// records of its key were predicted by v1 (at least once).
			cutOver("output stream order", e.outputList(t))
			st := a.Stats()
			t.Logf("across the switch: %v; stats %+v", byVersion, st)
			if st.Switches != 1 || st.Refused != 2 || strings.Join(st.ModelHistory, ",") != "v1,v2" {
				t.Fatalf("stats %+v", st)
			}
			if strings.Contains(logs.String(), "call failed") {
				t.Fatalf("the switch logged per-record failures:\n%s", logs)
			}
		})
	}
}

// TestRestartServesNewestLoadable: after v1 -> v2 and a refused v3 on the
// control subject, a restarted app serves v2 (the newest kept model that
// loads), not -model (v1), and logs the refused one.
func TestRestartServesNewestLoadable(t *testing.T) {
	m1, m2 := models(t)
	v3 := filepath.Join(t.TempDir(), "v3.joblib")
	if err := os.WriteFile(v3, []byte("not a joblib file"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	ctx := context.Background()
	for _, p := range []string{m1, m2, v3} {
		if err := PublishModel(ctx, e.js, "", p); err != nil {
			t.Fatal(err)
		}
	}
	logs := &apptest.SyncBuffer{}
	payloads, good := generate(6, 50, 0)
	last := e.publish(t, payloads)
	a, stop := start(t, e, Config{Model: m1, Batch: true, StopAt: last, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	apptest.WaitFor(t, "the predictions", func() bool { return a.Stats().Predicted == 50 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Model != "v2" || strings.Join(st.ModelHistory, ",") != "v2" || st.Switches != 0 {
		t.Fatalf("stats %+v: want v2 served from the start", st)
	}
	_, l2 := independent(t, testEngine(t), m2, good)
	check(t, e.outputs(t, 50), good, "v2", l2)
	if !strings.Contains(logs.String(), v3) {
		t.Fatalf("the unloadable %s is not logged:\n%s", v3, logs)
	}
}

// slowModel is a "model file" whose loading runs Python for 30s (a pickle
// calling exec): the load a stop must not wait for.
func slowModel(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "slow.joblib")
	src := "[__import__('time').sleep(0.01) for _ in range(3000)]"
	if err := os.WriteFile(p, []byte("cbuiltins\nexec\n(V"+src+"\ntR."), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStopDuringModelLoad: while a new model loads (30s), a cancelled ctx
// and StopAt each make Run return promptly, with nil; the load is cancelled.
func TestStopDuringModelLoad(t *testing.T) {
	m1, _ := models(t)
	slow := slowModel(t)
	for _, how := range []string{"cancel", "StopAt"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			logs := &apptest.SyncBuffer{}
			a, stop, done := startDone(t, e, Config{Model: m1, Batch: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			payloads, _ := generate(7, 20, 0)
			last := e.publish(t, payloads)
			apptest.WaitFor(t, "the predictions", func() bool { return a.Stats().Predicted == 20 })
			if err := PublishModel(context.Background(), e.js, "", slow); err != nil {
				t.Fatal(err)
			}
			apptest.WaitFor(t, "the load", func() bool { return strings.Contains(logs.String(), "loading a new model") })
			time.Sleep(300 * time.Millisecond)
			asked := time.Now()
			var err error
			if how == "cancel" {
				err = stop()
			} else {
				a.StopAt(last)
				select {
				case <-done:
					err = stop() // returned already
				case <-time.After(40 * time.Second):
					t.Fatal("Run has not returned at StopAt during a model load")
				}
			}
			took := time.Since(asked)
			t.Logf("Run returned %v after the %s", took, how)
			if err != nil || took > 5*time.Second {
				t.Fatalf("Run returned %v %v after the %s during a model load; want nil, promptly", err, took, how)
			}
			if st := a.Stats(); st.Model != "v1" || st.Switches != 0 || st.Refused != 0 { // the load was still running
				t.Fatalf("stats %+v\n%s", st, logs)
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

	logs := &apptest.SyncBuffer{}
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
