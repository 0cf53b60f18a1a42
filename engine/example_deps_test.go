package engine_test

import (
	"archive/zip"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pyudf/pyudf/engine"
)

// A UDF whose module needs a package nobody installed: the requirements are
// installed once, offline, from a directory of wheels (what `pip download`
// leaves); a data file comes from an archive, extracted under its target.
func Example_dependencies() {
	ctx := context.Background()
	cache, _ := os.MkdirTemp("", "pyudf-example-")
	defer os.RemoveAll(cache)
	dir := "../examples/dependencies"
	lexicon := filepath.Join(cache, "lexicon.zip")
	writeZip(lexicon, "weights.tsv", "good\t1.0\nbad\t-1.0\n")

	eng, err := engine.New(ctx, engine.Config{
		Requirements:      filepath.Join(dir, "requirements.txt"), // tinytok==1.0
		RequirementsCache: filepath.Join(dir, "wheels"),
		Archives:          []engine.Archive{{Path: lexicon, Target: "lexicon"}},
		CacheDir:          cache, // default: os.UserCacheDir()/pyudf
	})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "score.py", `
import os
import tinytok
from pyflink.table.udf import ScalarFunction, udf

class Score(ScalarFunction):
    def open(self, function_context):
        path = os.path.join(function_context.get_archive_dir("lexicon"), "weights.tsv")
        with open(path) as f:
            self.weights = dict((w, float(v)) for w, v in (line.split("\t") for line in f))

    def eval(self, text):
        return sum(self.weights.get(w, 0.0) for w in tinytok.words(text))

score = udf(Score(), input_types=['STRING'], result_type='DOUBLE')
`)
	if err != nil {
		log.Fatal(err)
	}
	score, err := mod.Function(ctx, "score")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(score.Call(ctx, "Good, good, not bad"))
	fmt.Println("installed:", eng.Dependencies().Installed)
	// Output:
	// 1 <nil>
	// installed: true
}

// A PyFlink job's python.* settings, unchanged.
func ExampleConfig_SetPyFlinkOptions() {
	var cfg engine.Config
	err := cfg.SetPyFlinkOptions(
		"python.files=udfs.zip,helpers.py",
		"python.requirements=requirements.txt#cached_wheels",
		"python.archives=model.zip#model",
		"python.executable=/opt/venv/bin/python",
	)
	fmt.Println(err)
	fmt.Println(cfg.PythonFiles, cfg.Requirements, cfg.RequirementsCache, cfg.Archives, cfg.Python)
	// Output:
	// <nil>
	// [udfs.zip helpers.py] requirements.txt cached_wheels [{model.zip model}] /opt/venv/bin/python
}

// writeZip writes a zip archive holding one file.
func writeZip(path, name, content string) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	w, _ := zw.Create(name)
	w.Write([]byte(content))
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
}
