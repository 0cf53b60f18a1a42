package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

const streamSource = `
from pyudf import udf

def _shout(s, n):
    if n == 1234:
        raise ValueError("no 1234")
    if n == 1500:
        class Hoarse(Exception):
            pass
        raise Hoarse("no: 1500")
    return s.upper() + "!" * n

shout = udf(_shout, input_types=["STRING", "INT"], result_type="STRING")
`

func TestStreamDeliversEveryRowInOrder(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{BundleSize: 1000, BundleTime: 20 * time.Millisecond}, "stream.py", streamSource)
		s, err := function(t, m, "shout").Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		const rows = 2500
		go func() {
			for i := range rows {
				n := int32(i % 5)
				if i == 1234 || i == 1500 {
					n = int32(i)
				}
				if err := s.Send(fmt.Sprint("r", i%3), n); err != nil {
					t.Error(err)
				}
			}
			s.Close()
		}()
		n := 0
		raised := map[int]error{}
		for r := range s.Results() {
			if r.Seq != int64(n) {
				t.Fatalf("result %d has Seq %d", n, r.Seq)
			}
			if n == 1234 || n == 1500 {
				raised[n] = r.Err
			} else if r.Err != nil {
				t.Fatalf("row %d: %v", n, r.Err)
			} else if want := fmt.Sprint("R", n%3) + repeatBang(n%5); r.Value != want {
				t.Fatalf("row %d = %q, want %q", n, r.Value, want)
			}
			n++
		}
		if n != rows {
			t.Fatalf("%d results for %d rows", n, rows)
		}
		// The rows that raised, read once every bundle's arrays are released.
		for row, want := range map[int]bridge.PythonError{
			1234: {Type: "ValueError", Message: "no 1234"},
			1500: {Type: "stream._shout.<locals>.Hoarse", Message: "no: 1500"},
		} {
			var pe *bridge.PythonError
			if !errors.As(raised[row], &pe) || pe.Type != want.Type || pe.Message != want.Message || pe.Function != "shout" {
				t.Errorf("row %d: want the %s %q of shout, got %#v", row, want.Type, want.Message, raised[row])
			}
		}
		if err := s.Send("late", int32(1)); !errors.Is(err, ErrClosed) {
			t.Errorf("send after close: %v", err)
		}
	})
}

func repeatBang(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '!'
	}
	return string(b)
}

// A bundle goes out when its first row has waited BundleTime, full or not.
func TestStreamBundleTime(t *testing.T) {
	m := loadModule(t, Config{Mode: Process, Workers: 1, BundleSize: 1000, BundleTime: 100 * time.Millisecond}, "stream.py", streamSource)
	s, err := function(t, m, "shout").Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	for i := range 3 {
		if err := s.Send("x", int32(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		select {
		case r := <-s.Results():
			if r.Err != nil || r.Value != "X"+repeatBang(i) {
				t.Fatalf("row %d: %v, %v", i, r.Value, r.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no result: the partial bundle was never sent")
		}
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("results after %v, before the bundle time", waited)
	}
}

// A bundle whose worker dies: every row in it gets the WorkerError; the
// next bundle runs on the restarted worker.
func TestStreamBundleOfACrashedWorker(t *testing.T) {
	m := faultModule(t, Config{BundleSize: 3, BundleTime: time.Hour})
	s, err := function(t, m, "crash").Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"a", "exit", "b", "c", "d", "e"} {
		if err := s.Send(how); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	var got []string
	for r := range s.Results() {
		if r.Err != nil {
			if !errors.As(r.Err, new(*WorkerError)) {
				t.Errorf("row %d: want a *WorkerError, got %v", r.Seq, r.Err)
			}
			got = append(got, "ERR")
		} else {
			got = append(got, r.Value.(string))
		}
	}
	if fmt.Sprint(got) != "[ERR ERR ERR c d e]" {
		t.Errorf("results %v", got)
	}
}

func TestStreamRefusesWhatItCannotBundle(t *testing.T) {
	m := faultModule(t, Config{})
	_, err := m.engine.LoadSource(context.Background(), "nostream.py", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err = m.engine.LoadSource(context.Background(), "nostream2.py", faultSource+`
untyped = udf(lambda x: x)
decimal = udf(lambda d: d, input_types=["DECIMAL(10, 2)"], result_type="DECIMAL(10, 2)")
nanos = udf(lambda d: d, input_types=["TIMESTAMP(9)"], result_type="TIMESTAMP(9)")
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"untyped", "decimal", "nanos"} {
		if _, err := function(t, m, name).Stream(context.Background()); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: want ErrUnsupported, got %v", name, err)
		}
	}
	s, err := function(t, m, "crash").Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(int64(3)); !errors.Is(err, errStreamValue) {
		t.Errorf("an int for STRING: %v", err)
	}
	if err := s.Send("a", "b"); !errors.Is(err, ErrArgumentCount) {
		t.Errorf("two arguments for one: %v", err)
	}
}

// Every type a process-mode Stream bundles comes back as Call returns it.
func TestStreamTypesMatchCall(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{BundleSize: 4, BundleTime: 10 * time.Millisecond})
		cases := []struct {
			ddl  string
			args []any
		}{
			{"BOOLEAN", []any{true, nil, false}},
			{"TINYINT", []any{int8(-128), nil, 127}},
			{"SMALLINT", []any{int16(-32768), 7}},
			{"INT", []any{int32(5), nil, int64(-2147483648)}},
			{"BIGINT", []any{int64(1) << 62, nil, 3}},
			{"FLOAT", []any{float32(1.5), nil, 2}},
			{"DOUBLE", []any{-2.25, nil, 1e300}},
			{"STRING", []any{"héllo", nil, ""}},
			{"BYTES", []any{[]byte{0, 255}, nil, []byte{}}},
			{"DATE", []any{time.Date(2024, 2, 29, 13, 0, 0, 0, time.UTC), nil}},
			{"TIME(6)", []any{13*time.Hour + 45*time.Minute + 123456*time.Microsecond, nil, time.Date(1, 1, 1, 1, 2, 3, 0, time.UTC)}},
			{"TIMESTAMP(3)", []any{time.Date(2024, 1, 2, 3, 4, 5, 678000000, time.FixedZone("x", 3600)), nil}},
			{"TIMESTAMP_LTZ(6)", []any{time.Date(2024, 1, 2, 3, 4, 5, 678901000, time.FixedZone("x", 3600)), nil}},
		}
		var src strings.Builder
		src.WriteString("from pyudf import udf\n")
		for i, c := range cases {
			fmt.Fprintf(&src, "same_%d = udf(lambda x: x, input_types=[%q], result_type=%q)\n", i, c.ddl, c.ddl)
		}
		m, err := e.LoadSource(context.Background(), "stream_types.py", src.String())
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cases {
			f := function(t, m, fmt.Sprintf("same_%d", i))
			s, err := f.Stream(context.Background())
			if err != nil {
				t.Fatalf("%s: %v", c.ddl, err)
			}
			for _, a := range c.args {
				if err := s.Send(a); err != nil {
					t.Fatalf("%s: send %v: %v", c.ddl, a, err)
				}
			}
			s.Close()
			j := 0
			for r := range s.Results() {
				want, err := f.Call(context.Background(), c.args[j])
				if err != nil || r.Err != nil {
					t.Fatalf("%s row %d: call %v, stream %v", c.ddl, j, err, r.Err)
				}
				if !reflect.DeepEqual(r.Value, want) {
					t.Errorf("%s row %d: stream %#v, call %#v", c.ddl, j, r.Value, want)
				}
				j++
			}
			if j != len(c.args) {
				t.Errorf("%s: %d results for %d rows", c.ddl, j, len(c.args))
			}
		}
	})
}
