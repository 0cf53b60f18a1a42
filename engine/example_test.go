package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

func Example() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "example.py", `
from pyflink.table import DataTypes
from pyflink.table.udf import udf

@udf(input_types=[DataTypes.STRING(), DataTypes.BIGINT()], result_type=DataTypes.STRING())
def repeat(s, n):
    return s * n
`)
	if err != nil {
		log.Fatal(err)
	}
	repeat, err := mod.Function(ctx, "repeat")
	if err != nil {
		log.Fatal(err)
	}
	v, err := repeat.Call(ctx, "ab", 3)
	fmt.Println(v, err)

	_, err = repeat.Call(ctx, "ab", "three")
	fmt.Println(err)
	// Output:
	// ababab <nil>
	// pyudf: function "repeat": argument 2: Go string "three" is not a BIGINT
}

func ExampleFunction_CallValues() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "add.py",
		"from pyudf import udf\nadd = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')\n")
	if err != nil {
		log.Fatal(err)
	}
	add, err := mod.Function(ctx, "add")
	if err != nil {
		log.Fatal(err)
	}
	// No allocation: arguments and result are bridge.Values.
	sum, err := add.CallValues(ctx, bridge.Int64(40), bridge.Int64(2))
	fmt.Println(sum.AsInt64(), err)
	// Output: 42 <nil>
}

func ExampleEngine_Metrics() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "counted.py", `
from pyflink.table.udf import ScalarFunction, udf

class Counted(ScalarFunction):
    def open(self, function_context):
        self.calls = function_context.get_metric_group().counter("calls")

    def eval(self, x):
        self.calls.inc()
        return x

upper = udf(Counted(), input_types=["STRING"], result_type="STRING")
lower = udf(Counted(), input_types=["STRING"], result_type="STRING")
`)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"upper", "lower", "upper"} {
		f, err := mod.Function(ctx, name) // the same instance for the same name
		if err != nil {
			log.Fatal(err)
		}
		if _, err := f.Call(ctx, "x"); err != nil {
			log.Fatal(err)
		}
	}
	// Each function has its own "calls" counter.
	metrics, err := eng.Metrics(ctx, engine.WithFunction("upper"))
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range metrics {
		fmt.Println(m.Function, m.Name, m.Kind, m.Count)
	}
	// Output:
	// upper calls counter 2
}
