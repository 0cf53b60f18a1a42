package engine

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// --- helpers --------------------------------------------------------------------------

// writeWheel writes a pure-Python wheel of distribution name holding files
// (paths from the wheel's root) into dir and returns its path. The wheel is made here, not
// with pip wheel: this interpreter's setuptools cannot build wheels offline
// (no `wheel` package), and a wheel is a zip with three metadata files.
func writeWheel(t testing.TB, dir, name, version string, files map[string]string) string {
	t.Helper()
	distInfo := fmt.Sprintf("%s-%s.dist-info", name, version)
	all := map[string]string{
		distInfo + "/METADATA": fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version),
		distInfo + "/WHEEL":    "Wheel-Version: 1.0\nGenerator: pyudf-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	for file, src := range files {
		all[file] = src
	}
	var names []string
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var record strings.Builder
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(all[n]))
		sum := sha256.Sum256([]byte(all[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(all[n]))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", distInfo)
	w, _ := zw.Create(distInfo + "/RECORD")
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", name, version))
	writeFile(t, path, buf.String())
	return path
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wheelCache is a cache directory (for Config.RequirementsCache) holding one
// wheel of package name, whose VALUE is value, and a requirements file naming it.
func wheelCache(t testing.TB, name, version, value string) (requirements, cache string) {
	t.Helper()
	dir := t.TempDir()
	cache = filepath.Join(dir, "wheels")
	writeWheel(t, cache, name, version, map[string]string{name + "/__init__.py": "VALUE = " + value + "\n"})
	requirements = writeFile(t, filepath.Join(dir, "requirements.txt"), name+"=="+version+"\n")
	return requirements, cache
}

// zipFile writes a zip of entries (name -> content; a name ending in "/" is a
// directory, a content starting with "->" a symlink to the rest).
func zipFile(t testing.TB, path string, entries ...[2]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e[0], Method: zip.Deflate}
		content := e[1]
		if link, ok := strings.CutPrefix(content, "->"); ok {
			hdr.SetMode(os.ModeSymlink | 0o777)
			content = link
		} else if strings.HasSuffix(e[0], "/") {
			hdr.SetMode(os.ModeDir | 0o755)
		} else {
			hdr.SetMode(0o644)
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, path, buf.String())
}

// tarGz writes a .tar.gz of headers (a TypeReg header's content is its Linkname field's text).
func tarGz(t testing.TB, path string, entries ...tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range entries {
		var content string
		if h.Typeflag == tar.TypeReg {
			content, h.Linkname = h.Linkname, ""
			h.Size = int64(len(content))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return writeFile(t, path, buf.String())
}

const depsUDF = `
import os, sys
from pyudf import udf, ScalarFunction

@udf(input_types=['STRING'], result_type='STRING')
def module_file(name):
    import importlib
    return importlib.import_module(name).__file__

@udf(input_types=['STRING'], result_type='STRING')
def module_value(name):
    import importlib
    return str(importlib.import_module(name).VALUE)

@udf(input_types=['STRING'], result_type='STRING')
def read_relative(path):
    with open(path) as f:
        return f.read()

@udf(input_types=[], result_type='ARRAY<STRING>')
def python_path():
    return list(sys.path)

class ReadArchive(ScalarFunction):
    """Reads a file of an archive through function_context.get_archive_dir."""
    def open(self, function_context):
        self.ctx = function_context

    def eval(self, target, name):
        with open(os.path.join(self.ctx.get_archive_dir(target), name)) as f:
            return f.read()

read_archive = udf(ReadArchive(), input_types=['STRING', 'STRING'], result_type='STRING')

class ArchiveRoot(ScalarFunction):
    def open(self, function_context):
        self.ctx = function_context

    def eval(self):
        return self.ctx.get_archive_dir()

archive_root = udf(ArchiveRoot(), input_types=[], result_type='STRING')
`

// depsModule loads depsUDF into a new engine (of the test's mode) with cfg.
func depsModule(t *testing.T, cfg Config) *Module {
	t.Helper()
	return loadModule(t, cfg, "deps_udfs.py", depsUDF)
}

func callString(t *testing.T, m *Module, name string, args ...any) string {
	t.Helper()
	v := call(t, m, name, args...)
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s%v = %#v, want a string", name, args, v)
	}
	return s
}

// newEngineErr is New's error for cfg in the test's mode (and closes an engine that New returned).
func newEngineErr(t *testing.T, cfg Config) error {
	t.Helper()
	if cfg.Mode == Thread {
		cfg.Mode = modeOf(t.Name())
	}
	if cfg.Mode == Process && cfg.Workers == 0 {
		cfg.Workers = 1
	}
	e, err := New(context.Background(), cfg)
	if err == nil {
		e.Close()
		t.Fatalf("New(%+v) succeeded; want an error", cfg)
	}
	return err
}

// wantDependencyError checks that err is a *DependencyError of kind with exactly message.
func wantDependencyError(t *testing.T, err error, kind, message string) *DependencyError {
	t.Helper()
	var de *DependencyError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DependencyError", err, err)
	}
	if de.Kind != kind || de.Error() != message && !strings.HasPrefix(de.Error(), message+"\n") {
		t.Fatalf("error:\n%s\nwant kind %q and message:\n%s", de.Error(), kind, message)
	}
	return de
}

// stillRuns checks that a new engine on the same cache directory still runs a UDF.
func stillRuns(t *testing.T, cacheDir string) {
	t.Helper()
	stillWorks(t, loadModule(t, Config{CacheDir: cacheDir}, "after_deps_error.py", errorSource))
}

// emptyOrMissing fails unless dir is absent or empty (nothing half-written).
func emptyOrMissing(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s holds %v after a failed install; want nothing", dir, names)
	}
}

// --- requirements -------------------------------------------------------------------

func TestDepsRequirementsFromCacheOffline(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		requirements, cache := wheelCache(t, "pyudf_dep_offline", "1.0", "41")
		m := depsModule(t, Config{Requirements: requirements, RequirementsCache: cache, CacheDir: t.TempDir()})
		deps := m.engine.Dependencies()
		if !deps.Installed || deps.InstallTime <= 0 {
			t.Fatalf("Dependencies() = %+v; want Installed with its time", deps)
		}
		if got := callString(t, m, "module_value", "pyudf_dep_offline"); got != "41" {
			t.Fatalf("VALUE = %q, want 41", got)
		}
		file := callString(t, m, "module_file", "pyudf_dep_offline")
		if !strings.HasPrefix(file, deps.RequirementsDir+string(os.PathSeparator)) {
			t.Fatalf("pyudf_dep_offline imported from %s, not from the requirements dir %s", file, deps.RequirementsDir)
		}
	})
}

func TestDepsSecondEngineDoesNotInstallAgain(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		requirements, cache := wheelCache(t, "pyudf_dep_reuse", "1.0", "7")
		cfg := Config{Requirements: requirements, RequirementsCache: cache, CacheDir: t.TempDir()}
		first := depsModule(t, cfg).engine.Dependencies()
		if !first.Installed {
			t.Fatalf("first engine: %+v; want Installed", first)
		}
		// The wheel, replaced by garbage of the same name and size: the
		// cache's listing (and so the install's hash) is unchanged, and a pip
		// run would now fail. The second engine must not run pip at all.
		wheel := filepath.Join(cache, "pyudf_dep_reuse-1.0-py3-none-any.whl")
		info, err := os.Stat(wheel)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, wheel, strings.Repeat("x", int(info.Size())))
		m := depsModule(t, cfg)
		second := m.engine.Dependencies()
		if second.Installed || second.InstallTime != 0 || second.RequirementsDir != first.RequirementsDir {
			t.Fatalf("second engine: %+v; want the first's directory %s, not installed again", second, first.RequirementsDir)
		}
		if got := callString(t, m, "module_value", "pyudf_dep_reuse"); got != "7" {
			t.Fatalf("VALUE = %q, want 7", got)
		}
	})
}

func TestDepsProcessWorkersShareOneInstall(t *testing.T) {
	requirements, cache := wheelCache(t, "pyudf_dep_workers", "1.0", "5")
	m := depsModule(t, Config{Mode: Process, Workers: 3, Requirements: requirements, RequirementsCache: cache, CacheDir: t.TempDir()})
	deps := m.engine.Dependencies()
	installs, _ := os.ReadDir(filepath.Dir(deps.RequirementsDir))
	if len(installs) != 1 || !deps.Installed {
		t.Fatalf("%d directories under %s (%+v); want one install for 3 workers", len(installs), filepath.Dir(deps.RequirementsDir), deps)
	}
	for range 6 { // the calls spread over the workers
		if file := callString(t, m, "module_file", "pyudf_dep_workers"); !strings.HasPrefix(file, deps.RequirementsDir) {
			t.Fatalf("a worker imported pyudf_dep_workers from %s, not %s", file, deps.RequirementsDir)
		}
	}
}

// TestDepsMpmathSeed is the seed articles' case: a UDF doing `from mpmath
// import fadd` in a fresh engine whose requirements name mpmath, installed
// offline from a cache directory made by pip download.
func TestDepsMpmathSeed(t *testing.T) {
	python := configuredPython("")
	if python == "" {
		python = "python3"
	}
	cache := filepath.Join(t.TempDir(), "wheels")
	if out, err := exec.Command(python, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", cache, "mpmath").CombinedOutput(); err != nil {
		t.Skipf("skipped: pip download mpmath failed (is PyPI reachable from here?): %v\n%s", err, lastLines(string(out), 5))
	}
	wheels, _ := filepath.Glob(filepath.Join(cache, "mpmath-*.whl"))
	if len(wheels) != 1 {
		t.Fatalf("pip download left %v in %s; want one mpmath wheel", wheels, cache)
	}
	version := strings.Split(filepath.Base(wheels[0]), "-")[1]
	hostHas, _ := exec.Command(python, "-c", "import importlib.util as u; s = u.find_spec('mpmath'); print(s.origin if s else '')").Output()
	if origin := strings.TrimSpace(string(hostHas)); origin != "" {
		t.Logf("the host interpreter has its own mpmath (%s): the test checks that the engine loads the requirements' %s instead", origin, version)
	}
	requirements := writeFile(t, filepath.Join(t.TempDir(), "requirements.txt"), "mpmath\n")
	root := t.TempDir()
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{Requirements: requirements, RequirementsCache: cache, CacheDir: root}, "seed.py", `
import mpmath
from mpmath import fadd
from pyudf import udf

@udf(input_types=['DOUBLE', 'DOUBLE'], result_type='STRING')
def add_precise(a, b):
    return str(fadd(a, b))

@udf(input_types=[], result_type='ARRAY<STRING>')
def where():
    return [mpmath.__file__, mpmath.__version__]
`)
		if got := callString(t, m, "add_precise", 0.5, 0.25); got != "0.75" {
			t.Fatalf("add_precise(0.5, 0.25) = %q, want 0.75", got)
		}
		got := call(t, m, "where").([]any)
		dir := m.engine.Dependencies().RequirementsDir
		if !strings.HasPrefix(got[0].(string), dir+string(os.PathSeparator)) || got[1] != version {
			t.Fatalf("mpmath %v: want version %s from the requirements dir %s", got, version, dir)
		}
	})
}

func TestDepsThreadModeRefusesAnotherVersionOfAnImportedPackage(t *testing.T) {
	root := t.TempDir()
	req1, cache1 := wheelCache(t, "pyudf_dep_conflict", "1.0", "1")
	req2, cache2 := wheelCache(t, "pyudf_dep_conflict", "2.0", "2")
	m := depsModule(t, Config{Requirements: req1, RequirementsCache: cache1, CacheDir: root})
	if got := callString(t, m, "module_value", "pyudf_dep_conflict"); got != "1" { // imports 1.0
		t.Fatalf("VALUE = %q, want 1", got)
	}
	err := newEngineErr(t, Config{Mode: Thread, Requirements: req2, RequirementsCache: cache2, CacheDir: root})
	dir1 := m.engine.Dependencies().RequirementsDir
	wantDependencyError(t, err, "requirements", fmt.Sprintf("pyudf: requirements %s: requirement pyudf_dep_conflict 2.0 conflicts with "+
		"pyudf_dep_conflict 1.0, already imported in this interpreter (from %s); %s", req2,
		filepath.Join(dir1, "pyudf_dep_conflict", "__init__.py"), conflictAdvice))
	// The first engine is untouched, a new one still runs, and process mode isolates.
	if got := callString(t, m, "module_value", "pyudf_dep_conflict"); got != "1" {
		t.Fatalf("after the refusal, VALUE = %q, want 1", got)
	}
	stillRuns(t, root)
	p := depsModule(t, Config{Mode: Process, Requirements: req2, RequirementsCache: cache2, CacheDir: root})
	if got := callString(t, p, "module_value", "pyudf_dep_conflict"); got != "2" {
		t.Fatalf("process mode: VALUE = %q, want 2", got)
	}
}

const conflictAdvice = "thread mode has one interpreter per process, shared by every engine: " +
	"use process mode (Config.Mode = Process) to give an engine its own versions"

// A requirement that would shadow a module both interpreters have imported
// (the standard library's json) is refused in either mode: it could not take effect.
func TestHostileDepsRequirementShadowingAnImportedModule(t *testing.T) {
	modes(t, func(t *testing.T) {
		root, dir := t.TempDir(), t.TempDir()
		cache := filepath.Join(dir, "wheels")
		writeWheel(t, cache, "pyudf_dep_json", "9.0", map[string]string{"json/__init__.py": "def dumps(x): return 'fake'\n"})
		requirements := writeFile(t, filepath.Join(dir, "requirements.txt"), "pyudf_dep_json==9.0\n")
		stdlib, err := exec.Command(configuredPython(""), "-c", "import json; print(json.__file__)").Output()
		if err != nil {
			t.Fatal(err)
		}
		err = newEngineErr(t, Config{Requirements: requirements, RequirementsCache: cache, CacheDir: root})
		wantDependencyError(t, err, "requirements", fmt.Sprintf("pyudf: requirements %s: requirement pyudf_dep_json 9.0 conflicts with "+
			"module json (not from any version of pyudf_dep_json), already imported in this interpreter (from %s); %s",
			requirements, strings.TrimSpace(string(stdlib)), conflictAdvice))
		stillRuns(t, root)
	})
}

func TestDepsThreadModeRefusesTwoOpenEnginesWithTwoVersions(t *testing.T) {
	root := t.TempDir()
	req1, cache1 := wheelCache(t, "pyudf_dep_two", "1.0", "1")
	req2, cache2 := wheelCache(t, "pyudf_dep_two", "2.0", "2")
	first := newEngine(t, Config{Mode: Thread, Requirements: req1, RequirementsCache: cache1, CacheDir: root}) // not imported yet
	err := newEngineErr(t, Config{Mode: Thread, Requirements: req2, RequirementsCache: cache2, CacheDir: root})
	wantDependencyError(t, err, "requirements", fmt.Sprintf("pyudf: requirements %s: requirement pyudf_dep_two 2.0 conflicts with "+
		"pyudf_dep_two 1.0, which another open engine installed (%s); %s", req2, first.Dependencies().RequirementsDir, conflictAdvice))
	// Once the first is closed (nothing imported), the second version is free to load.
	first.Close()
	m := depsModule(t, Config{Mode: Thread, Requirements: req2, RequirementsCache: cache2, CacheDir: root})
	if got := callString(t, m, "module_value", "pyudf_dep_two"); got != "2" {
		t.Fatalf("VALUE = %q, want 2", got)
	}
}

func TestDepsRequirementsPipCannotSatisfy(t *testing.T) {
	modes(t, func(t *testing.T) {
		root := t.TempDir()
		_, cache := wheelCache(t, "pyudf_dep_unsat", "1.0", "1")
		requirements := writeFile(t, filepath.Join(t.TempDir(), "requirements.txt"), "pyudf_dep_unsat>=2\n")
		err := newEngineErr(t, Config{Requirements: requirements, RequirementsCache: cache, CacheDir: root})
		de := wantDependencyError(t, err, "requirements", fmt.Sprintf("pyudf: requirements %s: pip install failed (exit status 1)", requirements))
		wantMessage(t, errors.New(de.Output), "Could not find a version that satisfies the requirement pyudf_dep_unsat>=2 (from versions: 1.0)")
		emptyOrMissing(t, filepath.Join(root, "requirements"))
		stillRuns(t, root)
	})
}

func TestDepsOfflineCacheLacksAPackage(t *testing.T) {
	modes(t, func(t *testing.T) {
		root := t.TempDir()
		_, cache := wheelCache(t, "pyudf_dep_present", "1.0", "1")
		requirements := writeFile(t, filepath.Join(t.TempDir(), "requirements.txt"), "pyudf_dep_present==1.0\npyudf_dep_absent==1.0\n")
		err := newEngineErr(t, Config{Requirements: requirements, RequirementsCache: cache, CacheDir: root})
		de := wantDependencyError(t, err, "requirements", fmt.Sprintf("pyudf: requirements %s: pip install failed (exit status 1)", requirements))
		wantMessage(t, errors.New(de.Output), "No matching distribution found for pyudf_dep_absent==1.0")
		emptyOrMissing(t, filepath.Join(root, "requirements"))
		stillRuns(t, root)
	})
}

func TestDepsRequirementsFileMissing(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(t.TempDir(), "requirements.txt")
	err := newEngineErr(t, Config{Requirements: missing, CacheDir: root})
	wantDependencyError(t, err, "requirements", "pyudf: requirements "+missing+": cannot read the requirements file: no such file")
	stillRuns(t, root)
}

func TestDepsRequirementsCacheDirMissing(t *testing.T) {
	root := t.TempDir()
	requirements, _ := wheelCache(t, "pyudf_dep_nocache", "1.0", "1")
	missing := filepath.Join(t.TempDir(), "wheels")
	err := newEngineErr(t, Config{Requirements: requirements, RequirementsCache: missing, CacheDir: root})
	wantDependencyError(t, err, "requirements", "pyudf: requirements "+requirements+": cannot read the cache directory "+missing+": no such file or directory")
	stillRuns(t, root)
}

// --- python files -------------------------------------------------------------------

func TestDepsPythonFilesComeFirstOnSysPath(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		dir := t.TempDir()
		// The same package three times: a zip python file, the requirements, and site-packages' absence.
		zipped := zipFile(t, filepath.Join(dir, "shadow.zip"), [2]string{"pyudf_dep_shadow/__init__.py", "VALUE = 'from the zip'\n"})
		single := writeFile(t, filepath.Join(dir, "single", "pyudf_dep_single.py"), "VALUE = 'single file'\n")
		writeFile(t, filepath.Join(dir, "single", "pyudf_dep_sibling.py"), "VALUE = 'sibling'\n")
		wheel := writeWheel(t, filepath.Join(dir, "whl"), "pyudf_dep_wheelfile", "1.0", map[string]string{"pyudf_dep_wheelfile/__init__.py": "VALUE = 'from the wheel'\n"})
		pkgDir := filepath.Join(dir, "pkgdir")
		writeFile(t, filepath.Join(pkgDir, "pyudf_dep_indir.py"), "VALUE = 'from the directory'\n")
		requirements, cache := wheelCache(t, "pyudf_dep_shadow", "1.0", "'from the requirements'")
		extra := t.TempDir()
		m := depsModule(t, Config{PythonFiles: []string{zipped, single, wheel, pkgDir}, Requirements: requirements,
			RequirementsCache: cache, CacheDir: t.TempDir(), Path: []string{extra}})
		for name, want := range map[string]string{"pyudf_dep_shadow": "from the zip", "pyudf_dep_single": "single file",
			"pyudf_dep_wheelfile": "from the wheel", "pyudf_dep_indir": "from the directory"} {
			if got := callString(t, m, "module_value", name); got != want {
				t.Errorf("%s.VALUE = %q, want %q", name, got, want)
			}
		}
		if _, err := m.engine.LoadSource(context.Background(), "sibling.py", "import pyudf_dep_sibling"); err == nil {
			t.Errorf("a .py python file's sibling is importable; want only the file itself")
		}
		deps := m.engine.Dependencies()
		if len(deps.PythonPath) != 5 || deps.PythonPath[1] != zipped || deps.PythonPath[4] != deps.RequirementsDir {
			t.Fatalf("PythonPath = %v", deps.PythonPath)
		}
		path := call(t, m, "python_path").([]any)
		index := func(entry string) int {
			for i, p := range path {
				if p == entry {
					return i
				}
			}
			t.Fatalf("%s is not on sys.path %v", entry, path)
			return -1
		}
		site := -1
		for i, p := range path {
			if strings.HasSuffix(p.(string), "site-packages") {
				site = i
				break
			}
		}
		order := []int{index(deps.PythonPath[0]), index(zipped), index(wheel), index(pkgDir), index(deps.RequirementsDir), site, index(extra)}
		if !sort.IntsAreSorted(order) || site < 0 {
			t.Fatalf("sys.path positions of python files, requirements, site-packages, Config.Path = %v; want increasing (%v)", order, path)
		}
	})
}

func TestDepsPythonFileMissing(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(t.TempDir(), "udfs_helper.py")
	err := newEngineErr(t, Config{PythonFiles: []string{missing}, CacheDir: root})
	wantDependencyError(t, err, "python file", "pyudf: python file "+missing+": no such file or directory")
	stillRuns(t, root)
}

func TestHostileDepsWheelThatIsNotAZip(t *testing.T) {
	modes(t, func(t *testing.T) {
		root := t.TempDir()
		wheel := writeFile(t, filepath.Join(t.TempDir(), "fake-1.0-py3-none-any.whl"), "this is not a zip archive")
		err := newEngineErr(t, Config{PythonFiles: []string{wheel}, CacheDir: root})
		wantDependencyError(t, err, "python file", "pyudf: python file "+wheel+": is not a zip archive (zip: not a valid zip file)")
		stillRuns(t, root)
	})
}

func TestDepsPythonFileOfUnknownKind(t *testing.T) {
	root := t.TempDir()
	file := writeFile(t, filepath.Join(t.TempDir(), "notes.txt"), "hello")
	err := newEngineErr(t, Config{PythonFiles: []string{file}, CacheDir: root})
	wantDependencyError(t, err, "python file", "pyudf: python file "+file+": is not a .py, .zip, .whl or .egg file nor a directory")
	stillRuns(t, root)
}

// --- archives -----------------------------------------------------------------------

func TestDepsArchivesExtractedUnderTheirTargets(t *testing.T) {
	modes(t, func(t *testing.T) {
		dir := t.TempDir()
		model := zipFile(t, filepath.Join(dir, "model.zip"), [2]string{"weights/", ""},
			[2]string{"weights/model.txt", "w=0.5"}, [2]string{"latest", "->weights/model.txt"})
		vocab := tarGz(t, filepath.Join(dir, "vocab.tar.gz"),
			tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			tar.Header{Name: "./words.txt", Typeflag: tar.TypeReg, Linkname: "go python"},
			tar.Header{Name: "./again.txt", Typeflag: tar.TypeLink, Linkname: "words.txt"})
		m := depsModule(t, Config{Archives: []Archive{{Path: model, Target: "data"}, {Path: vocab}}, CacheDir: t.TempDir()})
		deps := m.engine.Dependencies()
		if want := filepath.Join(deps.ArchivesDir, "vocab.tar.gz"); deps.Archives["vocab.tar.gz"] != want {
			t.Fatalf("Archives = %v; want the default target vocab.tar.gz at %s", deps.Archives, want)
		}
		for _, c := range [][3]string{{"data", "weights/model.txt", "w=0.5"}, {"data", "latest", "w=0.5"},
			{"vocab.tar.gz", "words.txt", "go python"}, {"vocab.tar.gz", "again.txt", "go python"}} {
			if got := callString(t, m, "read_archive", c[0], c[1]); got != c[2] {
				t.Errorf("read_archive(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
			}
		}
		if got := callString(t, m, "archive_root"); got != deps.ArchivesDir {
			t.Errorf("get_archive_dir() = %q, want %q", got, deps.ArchivesDir)
		}
		if modeOf(t.Name()) == Process { // workers run in the archives' directory: PyFlink's relative paths work
			if got := callString(t, m, "read_relative", "data/weights/model.txt"); got != "w=0.5" {
				t.Errorf("relative read in a worker = %q", got)
			}
		}
		_, err := m.Function(context.Background(), "read_archive")
		if err != nil {
			t.Fatal(err)
		}
		f := function(t, m, "read_archive")
		_, err = f.Call(context.Background(), "nope", "x")
		wantMessage(t, err, "LookupError", "no archive with target 'nope'; this engine's targets: data, vocab.tar.gz")
	})
}

// refuseArchive checks that an engine with archive is refused with exactly
// reason, that nothing was extracted (not even a temporary directory), that
// nothing appeared outside, and that a new engine still runs a UDF.
func refuseArchive(t *testing.T, archive, reason string) {
	t.Helper()
	modes(t, func(t *testing.T) {
		root := t.TempDir()
		err := newEngineErr(t, Config{Archives: []Archive{{Path: archive, Target: "data"}}, CacheDir: root})
		wantDependencyError(t, err, "archive", "pyudf: archive "+archive+": "+reason)
		emptyOrMissing(t, filepath.Join(root, "archives"))
		stillRuns(t, root)
	})
	if _, err := os.Lstat(filepath.Join(filepath.Dir(archive), "escaped")); err == nil {
		t.Fatalf("the archive wrote %s", filepath.Join(filepath.Dir(archive), "escaped"))
	}
}

func TestHostileDepsArchiveEntryWithDotDot(t *testing.T) {
	a := zipFile(t, filepath.Join(t.TempDir(), "a.zip"), [2]string{"ok.txt", "fine"}, [2]string{"sub/../../escaped", "out"})
	refuseArchive(t, a, `entry "sub/../../escaped" escapes the target directory`)
}

func TestHostileDepsArchiveEntryWithAbsolutePath(t *testing.T) {
	dir := t.TempDir()
	a := tarGz(t, filepath.Join(dir, "a.tar.gz"), tar.Header{Name: "ok.txt", Typeflag: tar.TypeReg, Linkname: "fine"},
		tar.Header{Name: filepath.Join(dir, "escaped"), Typeflag: tar.TypeReg, Linkname: "out"})
	refuseArchive(t, a, fmt.Sprintf("entry %q is an absolute path", filepath.Join(dir, "escaped")))
}

func TestHostileDepsArchiveSymlinkOutside(t *testing.T) {
	a := zipFile(t, filepath.Join(t.TempDir(), "a.zip"), [2]string{"link", "->../../escaped"})
	refuseArchive(t, a, `entry "link": symlink to "../../escaped" points outside the target directory`)
}

func TestHostileDepsArchiveSymlinkToAbsolutePath(t *testing.T) {
	a := tarGz(t, filepath.Join(t.TempDir(), "a.tgz"), tar.Header{Name: "passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	refuseArchive(t, a, `entry "passwd": symlink to "/etc/passwd" points outside the target directory`)
}

// A symlink to "." and a second one climbing from it: each looks inside on
// its own; followed as the kernel would, the second leaves the directory.
func TestHostileDepsArchiveSymlinkChainOutside(t *testing.T) {
	a := tarGz(t, filepath.Join(t.TempDir(), "a.tar.gz"), tar.Header{Name: "here", Typeflag: tar.TypeSymlink, Linkname: "."},
		tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "here/.."})
	refuseArchive(t, a, `entry "up": symlink to "here/.." points outside the target directory`)
}

func TestHostileDepsArchiveEntryThroughSymlink(t *testing.T) {
	a := tarGz(t, filepath.Join(t.TempDir(), "a.tar.gz"), tar.Header{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "dir", Typeflag: tar.TypeSymlink, Linkname: "sub"},
		tar.Header{Name: "dir/x.txt", Typeflag: tar.TypeReg, Linkname: "x"})
	refuseArchive(t, a, `entry "dir/x.txt" goes through the symlink "dir"`)
}

func TestHostileDepsArchiveHardLinkOutside(t *testing.T) {
	a := tarGz(t, filepath.Join(t.TempDir(), "a.tar.gz"), tar.Header{Name: "ok.txt", Typeflag: tar.TypeReg, Linkname: "fine"},
		tar.Header{Name: "shadow", Typeflag: tar.TypeLink, Linkname: "../../../etc/shadow"})
	refuseArchive(t, a, `entry "shadow": hard link to "../../../etc/shadow" points outside the target directory`)
}

func TestHostileDepsArchiveHardLinkToAbsolutePath(t *testing.T) {
	a := tarGz(t, filepath.Join(t.TempDir(), "a.tar.gz"), tar.Header{Name: "hosts", Typeflag: tar.TypeLink, Linkname: "/etc/hosts"})
	refuseArchive(t, a, `entry "hosts": hard link to "/etc/hosts" points outside the target directory`)
}

func TestHostileDepsArchiveDeviceEntry(t *testing.T) {
	a := tarGz(t, filepath.Join(t.TempDir(), "a.tar.gz"), tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3})
	refuseArchive(t, a, `entry "null" is a device, fifo or other special file`)
}

func TestHostileDepsArchiveThatIsNotAnArchive(t *testing.T) {
	dir := t.TempDir()
	refuseArchive(t, writeFile(t, filepath.Join(dir, "model.zip"), "plain text"), "is not a zip archive (zip: not a valid zip file)")
	refuseArchive(t, writeFile(t, filepath.Join(dir, "model.tar.gz"), "plain text"), "is not a gzip-compressed tar archive (gzip: invalid header)")
}

func TestDepsArchiveOfUnknownFormat(t *testing.T) {
	refuseArchive(t, writeFile(t, filepath.Join(t.TempDir(), "model.rar"), "x"), "is not a .zip, .tar, .tar.gz or .tgz archive")
}

func TestDepsArchiveMissing(t *testing.T) {
	refuseArchive(t, filepath.Join(t.TempDir(), "model.zip"), "no such file")
}

func TestDepsTwoArchivesWithTheSameTarget(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	a := zipFile(t, filepath.Join(dir, "a.zip"), [2]string{"x", "1"})
	b := zipFile(t, filepath.Join(dir, "b", "a.zip"), [2]string{"y", "2"})
	err := newEngineErr(t, Config{Archives: []Archive{{Path: a}, {Path: b}}, CacheDir: root})
	wantDependencyError(t, err, "archive", fmt.Sprintf("pyudf: archive %s: target \"a.zip\" is already the target of %s", b, a))
	emptyOrMissing(t, filepath.Join(root, "archives"))
	stillRuns(t, root)
}

func TestDepsArchiveTargetThatIsAPath(t *testing.T) {
	root := t.TempDir()
	a := zipFile(t, filepath.Join(t.TempDir(), "a.zip"), [2]string{"x", "1"})
	err := newEngineErr(t, Config{Archives: []Archive{{Path: a, Target: "../up"}}, CacheDir: root})
	wantDependencyError(t, err, "archive", fmt.Sprintf("pyudf: archive %s: target \"../up\" is not a plain directory name", a))
	emptyOrMissing(t, filepath.Join(root, "archives"))
	stillRuns(t, root)
}

// --- PyFlink's keys -----------------------------------------------------------------

func TestDepsPyFlinkOptions(t *testing.T) {
	var cfg Config
	err := cfg.SetPyFlinkOptions("python.files=a.py, lib.zip", "python.requirements=requirements.txt#wheels",
		"python.archives=model.zip#data,vocab.tgz", "python.executable=/venv/bin/python", "python.files=more")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{PythonFiles: []string{"a.py", "lib.zip", "more"}, Requirements: "requirements.txt", RequirementsCache: "wheels",
		Archives: []Archive{{"model.zip", "data"}, {"vocab.tgz", ""}}, Python: "/venv/bin/python"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Fatalf("SetPyFlinkOptions gave\n%+v\nwant\n%+v", cfg, want)
	}
	for opt, reason := range map[string]string{
		"python.fn-execution.bundle.size=10": "unsupported key (want python.files, python.requirements, python.archives or python.executable)",
		"python.files":                       `want "key=value"`,
		"python.archives=":                   "empty value",
		"python.files=a.py,,b.py":            "empty file name in the list",
		"python.requirements=#wheels":        "no requirements file before '#'",
	} {
		var c Config
		wantDependencyError(t, c.SetPyFlinkOptions(opt), "option", "pyudf: option "+opt+": "+reason)
	}
}

// The options a PyFlink job sets, unchanged, run the same UDF in both modes.
func TestDepsPyFlinkOptionsEndToEnd(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		dir := t.TempDir()
		requirements, cache := wheelCache(t, "pyudf_dep_keys", "1.0", "3")
		lib := zipFile(t, filepath.Join(dir, "lib.zip"), [2]string{"pyudf_dep_keylib.py", "VALUE = 'lib'\n"})
		model := zipFile(t, filepath.Join(dir, "model.zip"), [2]string{"m.txt", "model"})
		cfg := Config{CacheDir: t.TempDir()}
		if err := cfg.SetPyFlinkOptions("python.files="+lib, "python.requirements="+requirements+"#"+cache,
			"python.archives="+model+"#data", "python.executable="+configuredPython("")); err != nil {
			t.Fatal(err)
		}
		m := depsModule(t, cfg)
		got := []string{callString(t, m, "module_value", "pyudf_dep_keylib"), callString(t, m, "module_value", "pyudf_dep_keys"),
			callString(t, m, "read_archive", "data", "m.txt")}
		if fmt.Sprint(got) != "[lib 3 model]" {
			t.Fatalf("got %v", got)
		}
	})
}

// Engines installing the same set at once (as concurrent processes would):
// one directory, complete, and every engine runs.
func TestDepsConcurrentEnginesInstallOneSet(t *testing.T) {
	requirements, cache := wheelCache(t, "pyudf_dep_concurrent", "1.0", "9")
	root := t.TempDir()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			e, err := New(context.Background(), Config{Mode: Process, Workers: 1, Requirements: requirements, RequirementsCache: cache, CacheDir: root})
			if err == nil {
				err = e.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	installs, _ := os.ReadDir(filepath.Join(root, "requirements"))
	if len(installs) != 1 {
		t.Fatalf("requirements holds %d entries; want exactly one install", len(installs))
	}
	m := depsModule(t, Config{Requirements: requirements, RequirementsCache: cache, CacheDir: root})
	if got := callString(t, m, "module_value", "pyudf_dep_concurrent"); got != "9" || m.engine.Dependencies().Installed {
		t.Fatalf("VALUE = %q, Installed = %v; want 9 from the existing install", got, m.engine.Dependencies().Installed)
	}
}

// makeVenv creates a virtualenv without pip (with the base interpreter's
// packages, pip among them, if systemSite) holding module venv_dep_marker.
func makeVenv(t *testing.T, systemSite bool) (python, site string) {
	t.Helper()
	venv := t.TempDir()
	args := []string{"-m", "venv", "--without-pip", venv}
	if systemSite {
		args = append(args, "--system-site-packages")
	}
	if out, err := exec.Command(basePython(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("creating a venv: %v\n%s", err, out)
	}
	sites, err := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if err != nil || len(sites) != 1 {
		t.Fatalf("venv site-packages: %v %v", sites, err)
	}
	writeFile(t, filepath.Join(sites[0], "venv_dep_marker.py"), "VALUE = 'venv'\n")
	return filepath.Join(venv, "bin", "python"), sites[0]
}

// A virtualenv's interpreter (process mode: a process has one embedded
// interpreter, and the tests' is the base one) composes with the options:
// python files, requirements (installed by the venv's pip), the venv's
// site-packages, Config.Path, in that order.
func TestDepsComposeWithAVirtualenv(t *testing.T) {
	python, site := makeVenv(t, true)
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	writeFile(t, filepath.Join(files, "pyudf_dep_venvfile.py"), "VALUE = 'file'\n")
	requirements, cache := wheelCache(t, "pyudf_dep_venvreq", "1.0", "'requirement'")
	extra := t.TempDir()
	m := depsModule(t, Config{Mode: Process, Workers: 1, Python: python, PythonFiles: []string{files},
		Requirements: requirements, RequirementsCache: cache, CacheDir: t.TempDir(), Path: []string{extra}})
	got := []string{callString(t, m, "module_value", "pyudf_dep_venvfile"), callString(t, m, "module_value", "pyudf_dep_venvreq"),
		callString(t, m, "module_value", "venv_dep_marker")}
	if fmt.Sprint(got) != "[file requirement venv]" {
		t.Fatalf("got %v", got)
	}
	path := call(t, m, "python_path").([]any)
	pos := map[string]int{}
	for i, p := range path {
		pos[p.(string)] = i + 1 // 0: absent
	}
	order := []int{pos[files], pos[m.engine.Dependencies().RequirementsDir], pos[site], pos[extra]}
	if !sort.IntsAreSorted(order) || order[0] == 0 {
		t.Fatalf("sys.path positions of python files, requirements, venv site-packages, Config.Path = %v; want increasing (%v)", order, path)
	}
}

func TestDepsRequirementsWithAnInterpreterWithoutPip(t *testing.T) {
	python, _ := makeVenv(t, false)
	root := t.TempDir()
	requirements, cache := wheelCache(t, "pyudf_dep_nopip", "1.0", "1")
	err := newEngineErr(t, Config{Mode: Process, Python: python, Requirements: requirements, RequirementsCache: cache, CacheDir: root})
	de := wantDependencyError(t, err, "requirements", "pyudf: requirements "+requirements+": pip install failed (exit status 1)")
	wantMessage(t, errors.New(de.Output), "No module named pip")
	emptyOrMissing(t, filepath.Join(root, "requirements"))
	stillRuns(t, root)
}

// Processes installing one set at once do not share installLocks: each fills
// a temporary directory and renames it. Every one succeeds, one complete
// directory stays, and no temporary directory is left.
func TestDepsConcurrentRenamesKeepOneCompleteDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "requirements", "abc")
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			errs <- createDir(dir, func(tmp string) error {
				for j := range 20 {
					if err := os.WriteFile(filepath.Join(tmp, fmt.Sprintf("f%d", j)), []byte(fmt.Sprint(i)), 0o644); err != nil {
						return err
					}
				}
				return nil
			})
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 || entries[0].Name() != "abc" {
		t.Fatalf("%s holds %v; want only abc", filepath.Dir(dir), entries)
	}
	files, _ := os.ReadDir(dir)
	first, _ := os.ReadFile(filepath.Join(dir, "f0"))
	for _, f := range files {
		if b, _ := os.ReadFile(filepath.Join(dir, f.Name())); !bytes.Equal(b, first) {
			t.Fatalf("%s mixes the writers' files", dir)
		}
	}
	if len(files) != 20 {
		t.Fatalf("%d files; want 20", len(files))
	}
}

// With archives, process-mode workers run in the archives' directory; a
// relative Config.Python and relative Config.Path entries still mean what
// they mean to the Go program (its working directory).
func TestDepsRelativeConfigPathsWithArchivesInProcessMode(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	python, err := filepath.Rel(cwd, basePython(t))
	if err != nil || !strings.Contains(python, string(os.PathSeparator)) {
		t.Skipf("no relative path with a separator to %s from %s", basePython(t), cwd)
	}
	extra, err := os.MkdirTemp(cwd, "testdata-deps-path-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(extra) })
	writeFile(t, filepath.Join(extra, "pyudf_dep_relpath.py"), "VALUE = 'relative Config.Path'\n")
	archive := zipFile(t, filepath.Join(t.TempDir(), "a.zip"), [2]string{"x.txt", "x"})
	m := depsModule(t, Config{Mode: Process, Workers: 1, Python: python, Path: []string{filepath.Base(extra)},
		Archives: []Archive{{Path: archive, Target: "data"}}, CacheDir: t.TempDir()})
	if got := callString(t, m, "module_value", "pyudf_dep_relpath"); got != "relative Config.Path" {
		t.Fatalf("VALUE = %q", got)
	}
	if got := callString(t, m, "read_relative", "data/x.txt"); got != "x" {
		t.Fatalf("data/x.txt = %q", got)
	}
}
