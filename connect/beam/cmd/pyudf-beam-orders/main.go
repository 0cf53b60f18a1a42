// Command pyudf-beam-orders is a small Apache Beam Go pipeline with PyFlink
// UDFs, and its own worker binary: an ordinary Beam main (beam.Init first, then
// beamx.Run), so that the binary that launches the job is also the one that a
// Beam Go SDK worker (the worker image's /opt/apache/beam/boot) starts.
//
// The pipeline makes -n orders (SKU, price, quantity), normalises each SKU
// with a scalar UDF (one row call per element) and computes each order's
// total with a Pandas UDF (one Arrow batch per bundle), and checks both
// outputs against values computed in Go (passert: a wrong value fails the
// job). A third UDF reports the process it runs in (os.getpid() and the Beam
// worker pool's BEAM_GO_WORKER_POOL_ID, its user ID), which comes back to the launcher as
// metrics, so the launcher can tell where the UDFs ran:
//
//	pyudf-beam-orders -n 1000                    # Prism in-process, loopback: UDFs in this process
//	pyudf-beam-orders -n 1000 --worker_binary=$(command -v pyudf-beam-orders) \
//	    --environment_type=EXTERNAL --environment_config=localhost:50000 -require_external
//
// With -require_external the command fails unless the UDFs ran in a process
// other than the launcher, started by a Beam worker pool.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	pyudfbeam "github.com/pyudf/pyudf/connect/beam"
)

// udfs is the pipeline's Python code; it travels inside the pipeline (UDF.Source).
const udfs = `
import os
import pandas as pd
from pyflink.table.udf import udf

@udf(result_type='STRING', input_types=['STRING'])
def normalize_sku(sku):
    return sku.strip().upper().replace('_', '-')

@udf(result_type='DOUBLE', input_types=['DOUBLE', 'BIGINT'], func_type='pandas')
def order_total(price: pd.Series, qty: pd.Series) -> pd.Series:
    return price * qty

@udf(result_type='STRING', input_types=['STRING'])
def where(_):
    return f"{os.getpid()} {os.environ.get('BEAM_GO_WORKER_POOL_ID', '0')} {os.getuid()}"
`

// Order is one input element: its fields, in order, are the UDFs' arguments.
type Order struct {
	Price float64
	Qty   int64
}

var (
	pythonPid = beam.NewDistribution("pyudf", "python_pid")
	poolID    = beam.NewDistribution("pyudf", "worker_pool_id")
	pythonUID = beam.NewDistribution("pyudf", "python_uid")
	samePid   = beam.NewCounter("pyudf", "python_pid_is_worker_pid")
)

// recordWhere records the Python process ID, worker pool ID and user ID that where() saw,
// and counts the elements whose Python PID is this Go worker's own (thread mode:
// the interpreter is embedded in the worker process).
func recordWhere(ctx context.Context, w string) error {
	var pid, pool, uid int64
	if _, err := fmt.Sscan(w, &pid, &pool, &uid); err != nil {
		return fmt.Errorf("where() returned %q: %v", w, err)
	}
	pythonPid.Update(ctx, pid)
	poolID.Update(ctx, pool)
	pythonUID.Update(ctx, uid)
	if pid == int64(os.Getpid()) {
		samePid.Inc(ctx, 1)
	}
	return nil
}

func init() {
	beam.RegisterType(reflect.TypeOf((*Order)(nil)).Elem())
	register.Function2x1(recordWhere)
}

func skuOf(i int) string { return fmt.Sprintf(" sku_%d ", i%7) }

func orderOf(i int) Order { return Order{Price: float64(i%100) + 0.25, Qty: int64(i%5 + 1)} }

func totalOf(o Order) float64 { return o.Price * float64(o.Qty) }

// pipeline checks order_total's results against want (totalOf; tests pass a wrong one).
func pipeline(n int, want func(Order) float64) *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	skus, orders := make([]any, n), make([]any, n)
	wantSkus, wantTotals := make([]any, n), make([]any, n)
	for i := range n {
		skus[i], orders[i] = skuOf(i), orderOf(i)
		wantSkus[i] = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(skuOf(i)), "_", "-"))
		wantTotals[i] = want(orderOf(i))
	}
	skuCol := beam.Create(s, skus...)
	normalized := pyudfbeam.Scalar(s, pyudfbeam.UDF{Source: udfs, Function: "normalize_sku"}, reflect.TypeOf(""), skuCol)
	passert.Equals(s.Scope("check_skus"), normalized, wantSkus...)
	totals := pyudfbeam.Pandas(s, pyudfbeam.UDF{Source: udfs, Function: "order_total"}, reflect.TypeOf(float64(0)), beam.Create(s, orders...))
	passert.Equals(s.Scope("check_totals"), totals, wantTotals...)
	where := pyudfbeam.Scalar(s, pyudfbeam.UDF{Source: udfs, Function: "where"}, reflect.TypeOf(""), skuCol)
	beam.ParDo0(s, recordWhere, where)
	return p
}

func main() {
	n := flag.Int("n", 1000, "orders")
	requireExternal := flag.Bool("require_external", false, "fail unless the UDFs ran in a Beam worker pool's process, not in the launcher")
	flag.Parse()
	beam.Init() // a worker started by boot (--worker=true) runs the harness here and exits
	if err := run(*n, *requireExternal); err != nil {
		fmt.Fprintln(os.Stderr, "pyudf-beam-orders:", err)
		os.Exit(1)
	}
}

func run(n int, requireExternal bool) error {
	if n < 1 {
		return fmt.Errorf("-n %d: want at least one order", n)
	}
	pr, err := beamx.RunWithMetrics(context.Background(), pipeline(n, totalOf))
	if err != nil {
		return err
	}
	fmt.Printf("pyudf-beam-orders: %d orders: normalize_sku (scalar UDF) and order_total (Pandas UDF) results checked\n", n)
	var pid, pool, uid struct{ min, max, count int64 }
	for _, d := range pr.Metrics().AllMetrics().Distributions() {
		r := d.Result()
		switch d.Key.Name {
		case "python_pid":
			pid.min, pid.max, pid.count = r.Min, r.Max, r.Count
		case "worker_pool_id":
			pool.min, pool.max = r.Min, r.Max
		case "python_uid":
			uid.min, uid.max = r.Min, r.Max
		}
	}
	same := int64(0)
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Key.Name == "python_pid_is_worker_pid" {
			same += c.Result()
		}
	}
	if pid.count != int64(n) {
		return fmt.Errorf("where() reported %d elements of %d", pid.count, n)
	}
	fmt.Printf("pyudf-beam-orders: UDFs ran in Python pid %d..%d (%d of %d in the Go worker's own process), worker pool %d, uid %d..%d; launcher pid %d\n",
		pid.min, pid.max, same, n, pool.max, uid.min, uid.max, os.Getpid())
	if requireExternal {
		self := int64(os.Getpid())
		switch {
		case pid.min <= self && self <= pid.max:
			return fmt.Errorf("-require_external: a UDF ran in the launcher (pid %d)", self)
		case pool.min == 0:
			return fmt.Errorf("-require_external: a UDF ran outside a Beam worker pool (no BEAM_GO_WORKER_POOL_ID)")
		case same != int64(n):
			return fmt.Errorf("-require_external: %d of %d elements ran in a Python process that is not the Go worker's", int64(n)-same, n)
		}
	}
	return nil
}
