package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pyudf/pyudf/engine"
)

// A PyFlink KeyedProcessFunction driven from Go: the Go program gives each
// element its key and event time and owns the watermark; state and timers
// live in the interpreter, per key.
func ExampleModule_Operator() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "labels.py", `
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag
from pyflink.datastream.state import ValueStateDescriptor

late = OutputTag("late", Types.STRING())

class Labeller(KeyedProcessFunction):
    def open(self, runtime_context):
        self.shown = runtime_context.get_state(ValueStateDescriptor("shown", Types.LONG()))

    def process_element(self, event, ctx):
        if event == "exposure":
            self.shown.update(ctx.timestamp())
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 600_000)
        elif self.shown.value() is not None:
            ctx.timer_service().delete_event_time_timer(self.shown.value() + 600_000)
            self.shown.clear()
            yield ctx.get_current_key(), "positive"
        else:
            yield late, ctx.get_current_key()

    def on_timer(self, timestamp, ctx):
        self.shown.clear()
        yield ctx.get_current_key(), "negative"
`)
	if err != nil {
		log.Fatal(err)
	}
	op, err := mod.Operator(ctx, "Labeller", engine.OperatorOptions{SideOutputs: []string{"late"}})
	if err != nil {
		log.Fatal(err)
	}
	const minute = 60_000
	show := func(what string, out *engine.Output, err error) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(what, "->", out.Main, out.Side, out.Fired)
	}
	out, err := op.Process(ctx, "alice|shoes", "exposure", 0)
	show("alice exposure", out, err)
	out, err = op.Process(ctx, "bob|hat", "exposure", 1*minute)
	show("bob exposure", out, err)
	out, err = op.Process(ctx, "alice|shoes", "click", 3*minute)
	show("alice click", out, err)
	out, err = op.AdvanceWatermark(ctx, 12*minute) // bob's 10 minutes are over
	show("watermark 12m", out, err)
	out, err = op.Process(ctx, "bob|hat", "click", 13*minute)
	show("bob click", out, err)
	// Output:
	// alice exposure -> [] map[] 0
	// bob exposure -> [] map[] 0
	// alice click -> [[alice|shoes positive]] map[] 0
	// watermark 12m -> [[bob|hat negative]] map[] 1
	// bob click -> [] map[late:[bob|hat]] 0
}
