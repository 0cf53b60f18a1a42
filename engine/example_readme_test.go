package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pyudf/pyudf/engine"
)

// The README's example: start an engine, load PyFlink code, call a function.
// The README repeats this body line for line (TestReadmeExample checks).
func Example_readme() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{}) // Mode: engine.Process for worker processes
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "udfs.py", `
from pyflink.table.udf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b
`)
	if err != nil {
		log.Fatal(err)
	}
	add, err := mod.Function(ctx, "add") // runs open(function_context), if any
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(add.Call(ctx, 40, 2)) // from any goroutine
	// Output: 42 <nil>
}
