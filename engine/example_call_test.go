package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyudf/pyudf/engine"
)

// New starts an engine: the first one of a process starts the embedded
// interpreter. Job parameters reach function_context.get_job_parameter, and
// Python's logging and print output reach the slog.Logger.
func ExampleNew() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // no timestamps, for a stable output
			}
			return a
		},
	}))
	eng, err := engine.New(ctx, engine.Config{
		JobParameters: map[string]string{"threshold": "0.8"},
		Logger:        logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "score.py", `
import logging
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf

class Score(ScalarFunction):
    def open(self, function_context):
        self.threshold = float(function_context.get_job_parameter("threshold", "0.5"))
        logging.getLogger("score").warning("threshold %s", self.threshold)

    def eval(self, amount):
        return amount * self.threshold

score = udf(Score(), input_types=[DataTypes.DOUBLE()], result_type=DataTypes.DOUBLE())
`)
	if err != nil {
		log.Fatal(err)
	}
	score, err := mod.Function(ctx, "score") // runs open()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(score.Call(ctx, 10.0))
	// Output:
	// level=WARN msg="threshold 0.8" logger=score source=python
	// 8 <nil>
}

// LoadFile loads a .py file as a module named after the file (udfs.py is
// module udfs); LoadSource does the same with source text, Import with a
// module already on sys.path.
func ExampleEngine_LoadFile() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pyudf-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "udfs.py")
	err = os.WriteFile(path, []byte(`
from pyflink.table.udf import udf

@udf  # no declared types: the type hints give them
def shout(s: str) -> str:
    return s.upper() + "!"
`), 0o644)
	if err != nil {
		log.Fatal(err)
	}

	eng, err := engine.New(ctx, engine.Config{Path: []string{dir}})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadFile(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	shout, err := mod.Function(ctx, "shout")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(mod.Name(), shout.InputTypes(), shout.ResultType())
	fmt.Println(shout.Call(ctx, "hello"))

	_, err = mod.Function(ctx, "whisper")
	fmt.Println(err)
	// Output:
	// udfs [STRING] STRING
	// HELLO! <nil>
	// pyudf: unknown function "whisper" in module udfs
}

// Import imports a module from sys.path: here the standard library's math,
// whose plain functions are UDFs without declared types.
func ExampleEngine_Import() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.Import(ctx, "math")
	if err != nil {
		log.Fatal(err)
	}
	gcd, err := mod.Function(ctx, "gcd")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(gcd.Call(ctx, 12, 18))
	// Output: 6 <nil>
}

// A table function (udtf, TableFunction) gives one row zero or more rows.
func ExampleFunction_Rows() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "split.py", `
from pyflink.table.udf import udtf

@udtf(input_types=['STRING'], result_types=['STRING', 'BIGINT'])
def split(line):
    for word in line.split():
        yield word, len(word)
`)
	if err != nil {
		log.Fatal(err)
	}
	split, err := mod.Function(ctx, "split")
	if err != nil {
		log.Fatal(err)
	}
	for row, err := range split.Rows(ctx, "to be or not") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(row[0], row[1])
	}
	// Output:
	// to 2
	// be 2
	// or 2
	// not 3
}

// A Stream takes rows one at a time and delivers every result, in order. In
// thread mode each row is called at once; in process mode rows travel in
// bundles (Config.BundleSize, Config.BundleTime), as under PyFlink.
func ExampleFunction_Stream() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "inc.py", `
from pyflink.table.udf import udf

@udf(input_types=['BIGINT'], result_type='BIGINT')
def inc(x):
    if x == 2:
        raise ValueError("two is not allowed")
    return x + 1
`)
	if err != nil {
		log.Fatal(err)
	}
	inc, err := mod.Function(ctx, "inc")
	if err != nil {
		log.Fatal(err)
	}
	stream, err := inc.Stream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		defer stream.Close()
		for i := int64(0); i < 4; i++ {
			if err := stream.Send(i); err != nil {
				log.Fatal(err)
			}
		}
	}()
	for r := range stream.Results() {
		if r.Err != nil {
			fmt.Println(r.Seq, "error:", strings.SplitN(r.Err.Error(), "\n", 2)[0])
			continue
		}
		fmt.Println(r.Seq, r.Value)
	}
	// Output:
	// 0 1
	// 1 2
	// 2 error: pyudf: function "inc": ValueError: two is not allowed
	// 3 4
}

// Process mode runs the same code in Python worker processes: a crash, an
// os._exit or a memory blow-up stays in the worker, which is restarted.
func Example_processMode() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{
		Mode:    engine.Process,
		Workers: 1, // default: one per CPU
	})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "risky.py", `
import os
from pyflink.table.udf import udf

@udf(input_types=['BIGINT'], result_type='BIGINT')
def risky(x):
    if x < 0:
        os._exit(3)   # in thread mode this would end the Go process
    return x * 2
`)
	if err != nil {
		log.Fatal(err)
	}
	risky, err := mod.Function(ctx, "risky")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(risky.Call(ctx, 21))

	_, err = risky.Call(ctx, -1)
	var we *engine.WorkerError
	fmt.Println(errors.As(err, &we))

	fmt.Println(risky.Call(ctx, 4)) // the restarted worker
	// Output:
	// 42 <nil>
	// true
	// 8 <nil>
}

// Collector exports the metrics UDFs register (get_metric_group()) to
// Prometheus, labelled with the function that registered them.
func ExampleEngine_Collector() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "metered.py", `
from pyflink.table.udf import ScalarFunction, udf

class Metered(ScalarFunction):
    def open(self, function_context):
        group = function_context.get_metric_group()
        self.calls = group.counter("calls")
        self.sizes = group.distribution("size")

    def eval(self, s):
        self.calls.inc()
        self.sizes.update(len(s))
        return s

echo = udf(Metered(), input_types=['STRING'], result_type='STRING')
`)
	if err != nil {
		log.Fatal(err)
	}
	echo, err := mod.Function(ctx, "echo")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"a", "bcd"} {
		if _, err := echo.Call(ctx, s); err != nil {
			log.Fatal(err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(eng.Collector())
	// In a service: http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "pyudf_") {
			fmt.Println(line)
		}
	}
	// Output:
	// pyudf_calls{function="echo"} 2
	// pyudf_size_sum{function="echo"} 4
	// pyudf_size_count{function="echo"} 2
	// pyudf_size_max{function="echo"} 3
	// pyudf_size_min{function="echo"} 1
}
