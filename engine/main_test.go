package engine

import (
	"context"
	"testing"
)

// newEngine returns an engine closed when the test ends.
func newEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	e, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}
