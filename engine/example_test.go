package engine_test

import (
	"context"
	"fmt"
	"log"
	"time"

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

// A function without declared input types converts arguments by their Go
// type; bridge's typed constructors say which SQL type a value has.
func ExampleFunction_Call_typedArguments() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "typed.py", `
from pyflink.table.udf import udf

@udf
def what(x):
    return type(x).__name__ + " " + repr(x)
`)
	if err != nil {
		log.Fatal(err)
	}
	what, err := mod.Function(ctx, "what")
	if err != nil {
		log.Fatal(err)
	}
	t := time.Date(2024, 3, 1, 23, 30, 0, 0, time.UTC)
	for _, arg := range []any{
		t,                   // a time.Time as it is: TIMESTAMP_LTZ
		bridge.Date(t),      // DATE
		bridge.Timestamp(t), // TIMESTAMP
		bridge.RowOf([]string{"id", "owner"}, 7, "Ada"),
		bridge.Row{7, "Ada"},
		bridge.MapOf("z", 1, "a", 2),
	} {
		v, err := what.Call(ctx, arg)
		fmt.Println(v, err)
	}
	// Output:
	// datetime datetime.datetime(2024, 3, 1, 23, 30, tzinfo=datetime.timezone.utc) <nil>
	// date datetime.date(2024, 3, 1) <nil>
	// datetime datetime.datetime(2024, 3, 1, 23, 30) <nil>
	// Row Row(id=7, owner='Ada') <nil>
	// Row <Row(7, 'Ada')> <nil>
	// dict {'z': 1, 'a': 2} <nil>
}

// Module.Functions lists what a module offers, as the engine sees it,
// without opening anything.
func ExampleModule_Functions() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "listed.py", `
from pyudf import udf, udtf

@udf(result_type='BIGINT', input_types=['BIGINT', 'BIGINT'])
def add(a, b):
    return a + b

@udf(result_type='DOUBLE', func_type='pandas')
def twice(x):
    return x * 2

def length(s: str) -> int:
    return len(s)
`)
	if err != nil {
		log.Fatal(err)
	}
	infos, err := mod.Functions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range infos {
		fmt.Println(f.Name, f.Kind, f.FuncType, f.InputTypes, f.ResultType)
	}
	// Output:
	// add scalar general [BIGINT BIGINT] BIGINT
	// twice scalar pandas [] DOUBLE
	// length scalar general [STRING] BIGINT
}
