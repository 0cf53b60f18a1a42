package main

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	os.Exit(m.Run())
}

// On Prism in-process (loopback) the pipeline's values check passes, and the
// UDFs ran in this process, which -require_external rejects.
func TestOrdersLoopback(t *testing.T) {
	if err := run(50, false); err != nil {
		t.Fatal(err)
	}
	err := run(50, true)
	if err == nil || !strings.Contains(err.Error(), "a UDF ran in the launcher") {
		t.Fatalf("run -require_external in loopback: %v, want a UDF ran in the launcher", err)
	}
}

// A wrong expected total fails the job: the check is real.
func TestOrdersWrongTotalFails(t *testing.T) {
	wrong := func(o Order) float64 { return totalOf(o) + 1 }
	_, err := beamx.RunWithMetrics(context.Background(), pipeline(20, wrong))
	if err == nil || !strings.Contains(err.Error(), "20 unexpected entries (present in actual, missing in expected)") {
		t.Fatalf("pipeline with wrong totals: %v, want passert's 20 unexpected entries", err)
	}
}
