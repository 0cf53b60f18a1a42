package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const lookupSource = `
from pyflink.table.udf import AggregateFunction, udaf, udf, udtf

class Total(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, v):
        acc[0] += v
    def get_value(self, acc):
        return acc[0]

total = udaf(Total(), input_types=['BIGINT'], result_type='BIGINT')
mean = udaf(lambda v: v.mean(), input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')
plus = udf(lambda a: a + 1, input_types=['BIGINT'], result_type='BIGINT')
vec = udf(lambda a: a + 1, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
arrowed = udf(lambda a: a, input_types=['BIGINT'], result_type='BIGINT', func_type='arrow')

@udtf(input_types=['STRING'], result_types=['STRING'])
def split(s):
    for w in s.split():
        yield w
`

// TestAggregateLookupSharesState: Module.Aggregate follows Module.Function's
// rule: the same name returns the same instance (its accumulators shared)
// until it is closed; a lookup after Close opens a fresh, empty one.
func TestAggregateLookupSharesState(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "lookup.py", lookupSource)
		first := openAggregate(t, m, "total")
		second := openAggregate(t, m, "total")
		if first != second {
			t.Fatal("two lookups of one aggregate opened two instances")
		}
		if err := first.Accumulate(ctx, "k", int64(3)); err != nil {
			t.Fatal(err)
		}
		if err := second.Accumulate(ctx, "k", int64(4)); err != nil {
			t.Fatal(err)
		}
		if got := value(t, first, "k"); got != int64(7) {
			t.Errorf("total after 3 and 4 through two lookups = %v, want 7", got)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		if err := second.Accumulate(ctx, "k", int64(1)); !errors.Is(err, ErrClosed) {
			t.Errorf("the closed instance's second handle: %v, want ErrClosed", err)
		}
		fresh := openAggregate(t, m, "total")
		if fresh == first {
			t.Fatal("a lookup after Close returned the closed instance")
		}
		if err := fresh.Accumulate(ctx, "k", int64(5)); err != nil {
			t.Fatal(err)
		}
		if got := value(t, fresh, "k"); got != int64(5) {
			t.Errorf("fresh instance total = %v, want 5 (no state from the closed one)", got)
		}
	})
}

// TestWrongLookupMessages: asking for a function through the wrong call
// names the call that opens it, in grammatical English.
func TestWrongLookupMessages(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{}, "lookup_messages.py", lookupSource)
	cases := []struct {
		name string
		open func() error
		want string
	}{
		{"pandas udaf as Aggregate", func() error { _, err := m.Aggregate(ctx, "mean"); return err },
			`pyudf: unsupported function "mean": a Pandas aggregate function: open it with Module.Function and run it with Function.Reduce`},
		{"scalar as Aggregate", func() error { _, err := m.Aggregate(ctx, "plus"); return err },
			`pyudf: unsupported function "plus": a scalar function: open it with Module.Function`},
		{"aggregate as Function", func() error { _, err := m.Function(ctx, "total"); return err },
			`pyudf: unsupported function "total": an aggregate function: open it with Module.Aggregate`},
		{"Call of an Arrow UDF", func() error { _, err := function(t, m, "arrowed").Call(ctx, int64(1)); return err },
			`pyudf: unsupported function: Call of function "arrowed", an Arrow scalar function: use Eval or Map`},
		{"Call of a Pandas UDF", func() error { _, err := function(t, m, "vec").Call(ctx, int64(1)); return err },
			`pyudf: unsupported function: Call of function "vec", a Pandas scalar function: use Eval or Map`},
		{"Call of a table function", func() error { _, err := function(t, m, "split").Call(ctx, "a b"); return err },
			`pyudf: unsupported function: Call of function "split", a table function: use Rows or Explode`},
		{"Call of a Pandas UDAF", func() error { _, err := function(t, m, "mean").Call(ctx, 1.0); return err },
			`pyudf: unsupported function: Call of function "mean", a Pandas aggregate function: use Reduce`},
		{"Reduce of a scalar", func() error { _, err := function(t, m, "plus").Reduce(ctx, nil); return err },
			`pyudf: unsupported function: Reduce of function "plus", a scalar function: use Call, Eval, EvalRowErrors or Map`},
	}
	for _, c := range cases {
		err := c.open()
		if !errors.Is(err, ErrUnsupported) || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
	}
	if got := call(t, m, "plus", int64(1)); got != int64(2) {
		t.Errorf("plus(1) after the refusals = %v", got)
	}
	if strings.Contains(describeKind("aggregate", "general"), "a aggregate") {
		t.Error("describeKind: a aggregate")
	}
}
