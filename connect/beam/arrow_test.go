package pyudfbeam

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// A string that arrowValue takes from a result array outlives the array:
// Eval's results live in the interpreter's memory, freed on Release, and
// an emitted element may be kept (buffered by a downstream DoFn) long after.
func TestArrowValueStringsOutliveTheResult(t *testing.T) {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "strings_out.py", `
from pyflink.table.udf import udf

@udf(result_type='STRING', input_types=['STRING'], func_type='pandas')
def tag(s):
    return s.str.upper() + "-" + s.str.len().astype(str)
`)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := mod.Function(ctx, "tag")
	if err != nil {
		t.Fatal(err)
	}
	decl := []*bridge.DataType{bridge.MustParseType("STRING")}
	types := []arrow.DataType{arrow.BinaryTypes.String}
	eval := func(prefix string) []any {
		rows := make([][]any, 200)
		for i := range rows {
			rows[i] = []any{fmt.Sprintf("%s%03d", prefix, i)}
		}
		rec, err := buildBatch(decl, types, rows)
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		res, err := fn.Eval(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		out := make([]any, res.Len())
		for i := range out {
			if out[i], err = arrowValue(res, i); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	first := eval("first-element-")
	for range 20 { // reuse the memory the first result held
		eval(strings.Repeat("z", 40))
	}
	for i, v := range first {
		if want := fmt.Sprintf("FIRST-ELEMENT-%03d-17", i); v != want {
			t.Fatalf("element %d after its result was released: %q, want %q", i, v, want)
		}
	}
}
