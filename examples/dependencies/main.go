// Dependencies: a UDF that needs a package nobody pip-installed, shipped
// the way PyFlink jobs ship theirs.
//
//   - the UDF package itself (udfs/sentiment_udfs) as a .zip python file
//     (Config.PythonFiles, PyFlink's add_python_file),
//   - a third-party requirement (tinytok, requirements.txt) installed offline
//     from a cache directory of wheels (Config.Requirements and
//     RequirementsCache, set_python_requirements; wheels/ stands in for what
//     `pip download -d wheels -r requirements.txt` leaves),
//   - a data file (lexicon/weights.tsv) from a .tar.gz archive extracted under
//     the target "lexicon" (Config.Archives, add_python_archive).
//
// The .zip and the .tar.gz are packed from the directories beside this file
// at start, as a build step would. Run it with `go run ./examples/dependencies`
// (-mode process for worker processes); the second run reuses the install.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"runtime"

	"github.com/pyudf/pyudf/engine"
)

func main() {
	modeName := flag.String("mode", "thread", "thread (Python inside this process) or process (Python worker processes)")
	cacheDir := flag.String("cache-dir", "", "where requirements are installed and archives extracted (default: the user cache dir)")
	flag.Parse()
	mode := engine.Thread
	switch *modeName {
	case "thread":
	case "process":
		mode = engine.Process
	default:
		log.Fatalf("-mode %q: want thread or process", *modeName)
	}
	here := besideThisFile()
	build, err := os.MkdirTemp("", "pyudf-example-deps-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(build)
	udfsZip := filepath.Join(build, "udfs.zip")
	lexicon := filepath.Join(build, "lexicon.tar.gz")
	if err := zipDir(filepath.Join(here, "udfs"), udfsZip); err != nil {
		log.Fatal(err)
	}
	if err := tarGzDir(filepath.Join(here, "lexicon"), lexicon); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{
		Mode:              mode,
		Workers:           2,
		PythonFiles:       []string{udfsZip},
		Requirements:      filepath.Join(here, "requirements.txt"),
		RequirementsCache: filepath.Join(here, "wheels"),
		Archives:          []engine.Archive{{Path: lexicon, Target: "lexicon"}},
		CacheDir:          *cacheDir,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	deps := eng.Dependencies()
	if deps.Installed {
		fmt.Printf("installed requirements.txt in %v into %s\n", deps.InstallTime.Round(1e6), deps.RequirementsDir)
	} else {
		fmt.Printf("reused the install in %s\n", deps.RequirementsDir)
	}

	mod, err := eng.Import(ctx, "sentiment_udfs") // from udfs.zip
	if err != nil {
		log.Fatal(err)
	}
	version, err := mod.Function(ctx, "tokenizer_version")
	if err != nil {
		log.Fatal(err)
	}
	v, err := version.Call(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s mode, %s\n", mode, v)
	sentiment, err := mod.Function(ctx, "sentiment")
	if err != nil {
		log.Fatal(err)
	}
	for _, text := range []string{"A good day", "Great, great food but awful service", "not bad"} {
		score, err := sentiment.Call(ctx, text)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("sentiment(%q) = %v\n", text, score)
	}
}

// zipDir packs dir's files into a .zip, with paths relative to dir.
func zipDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	if err := zw.AddFS(os.DirFS(dir)); err != nil {
		return err
	}
	return zw.Close()
}

// tarGzDir packs dir's files into a .tar.gz, with paths relative to dir.
func tarGzDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, _ := tar.FileInfoHeader(info, "")
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return err
}

func besideThisFile() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}
