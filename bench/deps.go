package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/pyudf/pyudf/engine"
)

// dependencyCases times engine.New with Config.Requirements (the example's
// requirements.txt: one wheel, installed offline from its cache directory),
// in each mode: the first time, which runs pip install --target into a fresh
// cache directory, and again on the same cache directory, which must reuse
// the install (it fails the run if an engine installs again). Beside them,
// New without dependencies. Full run only: an install takes about a second.
// rows_per_s is engines per second; p50_ns is the median New, p99_ns the slowest.
func dependencyCases(ctx context.Context) []Result {
	defer prog.step("engine creation with requirements")
	_, file, _, _ := runtime.Caller(0)
	example := filepath.Join(filepath.Dir(file), "..", "examples", "dependencies")
	const installs, reuses = 3, 10
	var results []Result
	for _, mode := range []engine.Mode{engine.Thread, engine.Process} {
		cfg := engine.Config{Mode: mode, Workers: 2,
			Requirements:      filepath.Join(example, "requirements.txt"),
			RequirementsCache: filepath.Join(example, "wheels")}
		timeNew := func(cfg engine.Config, wantInstalled bool) time.Duration {
			start := time.Now()
			e, err := engine.New(ctx, cfg)
			took := time.Since(start)
			if err != nil {
				log.Fatal(err)
			}
			if cfg.Requirements != "" && e.Dependencies().Installed != wantInstalled {
				log.Fatalf("engine.New in %s mode: Installed = %v, want %v", mode, e.Dependencies().Installed, wantInstalled)
			}
			e.Close()
			return took
		}
		var first, again, bare []time.Duration
		for range installs {
			dir, err := os.MkdirTemp("", "pyudf-bench-deps-")
			if err != nil {
				log.Fatal(err)
			}
			c := cfg
			c.CacheDir = dir
			first = append(first, timeNew(c, true))
			for range reuses / installs {
				again = append(again, timeNew(c, false))
			}
			os.RemoveAll(dir)
		}
		for range reuses {
			bare = append(bare, timeNew(engine.Config{Mode: mode, Workers: 2}, false))
		}
		results = append(results,
			newResult("engine_new_requirements_first_install", mode, first, "pip install --target of one wheel from a cache directory (offline), into a fresh cache dir"),
			newResult("engine_new_requirements_reused", mode, again, "the same requirements again: the install is reused, pip does not run"),
			newResult("engine_new_no_dependencies", mode, bare, "for comparison"))
	}
	return results
}

// newResult summarises durations of engine.New: engines per second at the median.
func newResult(name string, mode engine.Mode, ds []time.Duration, note string) Result {
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	workers := ""
	if mode == engine.Process {
		workers = ", 2 workers"
	}
	return Result{Name: name, Mode: mode.String(), Goroutines: 1, BatchRows: 1, RowsPerS: 1 / med.Seconds(),
		P50Ns: med.Nanoseconds(), P99Ns: s[len(s)-1].Nanoseconds(), P999Ns: s[len(s)-1].Nanoseconds(), Rounds: len(ds),
		Note: fmt.Sprintf("engines/s; median New %.1f ms%s; %s", float64(med.Microseconds())/1000, workers, note)}
}
