package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

const tracebackSource = `from pyflink.table.udf import udf

def helper(x):
    raise ValueError("bad %d" % x)

def fails(x):
    return helper(x)

fails = udf(fails, input_types=['BIGINT'], result_type='BIGINT')
pandas_fails = udf(lambda x: helper(len(x)), input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
`

// TestTracebacksShowUserFramesOnly: the same failing UDF gives the same
// traceback text in thread and process mode, on the row and batch paths,
// with the user's frames and none of pyudf's own.
func TestTracebacksShowUserFramesOnly(t *testing.T) {
	tracebacks := map[string]map[string]string{}
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "tracebacks.py", tracebackSource)
		mem := checkedAllocator(t)
		got := map[string]string{}
		for what, err := range map[string]error{
			"call": func() error { _, err := function(t, m, "fails").Call(ctx, int64(1)); return err }(),
			"eval": func() error {
				_, err := function(t, m, "fails").Eval(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1]`))
				return err
			}(),
			"pandas": func() error {
				_, err := function(t, m, "pandas_fails").Eval(ctx, batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1]`))
				return err
			}(),
		} {
			var pe *bridge.PythonError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: %v, want a PythonError", what, err)
			}
			tb := pe.Traceback
			if strings.Contains(tb, "pyudf/") || strings.Contains(tb, "_worker.py") {
				t.Errorf("%s: pyudf frames in the traceback:\n%s", what, tb)
			}
			for _, want := range []string{"Traceback (most recent call last):\n", `File "tracebacks.py", line 4, in helper`, "ValueError: bad 1\n"} {
				if !strings.Contains(tb, want) {
					t.Errorf("%s: traceback lacks %q:\n%s", what, want, tb)
				}
			}
			got[what] = tb
		}
		tracebacks[t.Name()[strings.LastIndex(t.Name(), "/")+1:]] = got
	})
	thread, process := tracebacks["thread"], tracebacks["process"]
	for what, tb := range thread {
		if process[what] != tb {
			t.Errorf("%s: thread and process tracebacks differ:\nthread:\n%s\nprocess:\n%s", what, tb, process[what])
		}
	}
}
