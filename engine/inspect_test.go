package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const inspectSource = `
from pyudf import udf, udaf, udtf, AsyncScalarFunction, AggregateFunction, ScalarFunction

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

@udf(result_type='DOUBLE', func_type='pandas')
def twice(x):
    return x * 2

class Echo(AsyncScalarFunction):
    async def eval(self, s: str) -> str:
        return s

class Total(AggregateFunction):
    def create_accumulator(self): return [0]
    def accumulate(self, acc, x): acc[0] += x
    def get_value(self, acc): return acc[0]

total = udaf(Total(), input_types=['INT'], result_type='BIGINT')

@udtf(result_types=['STRING', 'INT'])
def split(s):
    yield s, 1

class NeedsArgs(ScalarFunction):
    def __init__(self, k):
        pass
    def eval(self, x):
        return x

@udf(result_type='NOT A TYPE')
def bad(x):
    return x
`

// Module.Functions lists every function of a module with the kind and
// declared types opening it would give, in every mode, opens none of them,
// and leaves the module usable.
func TestModuleFunctionsListsKindsAndTypes(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "inspect_kinds.py", inspectSource)
		for round := 0; round < 2; round++ { // a second listing is the same (process mode replays no request)
			infos, err := m.Functions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range infos {
				if f.Err != nil {
					got = append(got, f.Name+": "+f.Err.Error())
					continue
				}
				got = append(got, fmt.Sprintf("%s %s/%s async=%v (%s) -> %v",
					f.Name, f.Kind, f.FuncType, f.Async, typeList(f.InputTypes), f.ResultType))
			}
			want := []string{
				"add scalar/general async=false (BIGINT, BIGINT) -> BIGINT",
				"twice scalar/pandas async=false () -> DOUBLE",
				"Echo scalar/general async=true (STRING) -> STRING",
				"Total aggregate/general async=false () -> <nil>",
				"total aggregate/general async=false (INT) -> BIGINT",
				"split table/general async=false () -> ROW<f0 STRING, f1 INT>",
				`NeedsArgs: pyudf: function "NeedsArgs": TypeError: NeedsArgs.__init__() missing 1 required positional argument: 'k'`,
			}
			if len(got) != len(want)+1 || strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
				t.Fatalf("Functions:\n%s\nwant:\n%s\n+ bad", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if bad := infos[len(want)]; bad.Name != "bad" || bad.Err == nil || !strings.Contains(bad.Err.Error(), `function "bad": result type`) {
				t.Fatalf("bad: %+v", bad)
			}
		}
		add, err := m.Function(ctx, "add")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := add.Call(ctx, 1, 2); err != nil || v != int64(3) {
			t.Fatalf("add(1, 2) = %v, %v", v, err)
		}
	})
}

func TestModuleFunctionsAfterCloseFails(t *testing.T) {
	e := newEngine(t, Config{})
	m, err := e.LoadSource(context.Background(), "inspect_closed.py", "def f(): pass\n")
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := m.Functions(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Functions after Close: %v, want ErrClosed", err)
	}
}

// Listing only reads: in process mode it is not among the requests a
// restarted worker replays.
func TestModuleFunctionsIsNotReplayed(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{Mode: Process, Workers: 1}, "inspect_replay.py", "def f(x: int) -> int:\n    return x\n")
	w := m.engine.backend.(*workers)
	before := len(w.setup)
	for range 3 {
		if infos, err := m.Functions(ctx); err != nil || len(infos) != 1 || infos[0].Name != "f" {
			t.Fatalf("Functions: %+v, %v", infos, err)
		}
	}
	if got := len(w.setup); got != before {
		t.Fatalf("%d setup requests after listing three times, want %d", got, before)
	}
}
