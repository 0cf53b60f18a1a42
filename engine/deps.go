package engine

// Python dependency management, PyFlink's way: python files in front of
// sys.path, requirements installed once per set with the interpreter's own
// pip, archives extracted into a working directory, all prepared by the Go
// side before the interpreter (or any worker) sees them.

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// Archive is an archive (.zip, .tar, .tar.gz or .tgz) that the engine
// extracts into its working directory, under Target (default: the archive's
// file name, as PyFlink's add_python_archive does). A UDF then reads
// "<target>/model.bin" relative to that directory: see
// FunctionContext.get_archive_dir and docs/dependencies.md.
type Archive struct {
	Path   string
	Target string
}

// DependencyError is a Config.PythonFiles, Config.Requirements or
// Config.Archives entry (or a PyFlink option) that the engine could not use.
// Nothing of it was installed or extracted.
type DependencyError struct {
	Kind   string // "python file", "requirements", "archive" or "option"
	Path   string // the file the entry names (the option, for "option")
	Reason string
	Output string // requirements: the last lines pip printed
}

func (e *DependencyError) Error() string {
	msg := fmt.Sprintf("pyudf: %s %s: %s", e.Kind, e.Path, e.Reason)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

// Dependencies describes what an engine's dependency options resolved to.
type Dependencies struct {
	// PythonPath lists what went in front of sys.path, in order: the python
	// files (a directory holding the .py files, then directories, .zip,
	// .whl and .egg files as given), then RequirementsDir.
	PythonPath []string
	// RequirementsDir is where Config.Requirements is installed ("" without).
	RequirementsDir string
	// Installed: this New ran pip; false when it reused an earlier install.
	Installed bool
	// InstallTime is how long pip ran (0 when Installed is false).
	InstallTime time.Duration
	// ArchivesDir holds every extracted archive under its target name ("" without
	// archives); it is the process-mode workers' working directory.
	ArchivesDir string
	// Archives maps each archive's target to its extracted directory.
	Archives map[string]string
}

// Dependencies is what the engine's Config.PythonFiles, Requirements and
// Archives resolved to.
func (e *Engine) Dependencies() Dependencies { return e.deps }

// cacheRootEnv overrides the cache directory for every engine without Config.CacheDir.
const cacheRootEnv = "PYUDF_CACHE_DIR"

// cacheRoot is where installed requirements, extracted archives and staged
// python files are kept: Config.CacheDir, else $PYUDF_CACHE_DIR, else
// os.UserCacheDir()/pyudf.
func cacheRoot(cfg Config) string {
	if cfg.CacheDir != "" {
		return cfg.CacheDir
	}
	if dir := os.Getenv(cacheRootEnv); dir != "" {
		return dir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "pyudf")
}

// prepareDependencies resolves, installs and extracts cfg's dependency
// options. It writes nothing outside the cache root, and there only complete
// directories (each made under a temporary name and renamed).
func prepareDependencies(ctx context.Context, cfg Config) (Dependencies, error) {
	var d Dependencies
	if len(cfg.PythonFiles) == 0 && cfg.Requirements == "" && cfg.RequirementsCache == "" && len(cfg.Archives) == 0 {
		return d, nil
	}
	root, err := filepath.Abs(cacheRoot(cfg))
	if err != nil {
		return d, err
	}
	if d.PythonPath, err = stagePythonFiles(root, cfg.PythonFiles); err != nil {
		return d, err
	}
	if cfg.Requirements == "" && cfg.RequirementsCache != "" {
		return d, &DependencyError{Kind: "requirements", Path: cfg.RequirementsCache,
			Reason: "Config.RequirementsCache is set without Config.Requirements"}
	}
	if cfg.Requirements != "" {
		if d.RequirementsDir, d.Installed, d.InstallTime, err = installRequirements(ctx, root, dependencyPython(cfg), cfg.Requirements, cfg.RequirementsCache); err != nil {
			return d, err
		}
		d.PythonPath = append(d.PythonPath, d.RequirementsDir)
	}
	if d.ArchivesDir, d.Archives, err = extractArchives(root, cfg.Archives); err != nil {
		return d, err
	}
	return d, nil
}

// request is what the host's engine_open receives of d.
func (d Dependencies) request() map[string]any {
	archives := d.Archives
	if archives == nil {
		archives = map[string]string{}
	}
	front := d.PythonPath
	if front == nil {
		front = []string{}
	}
	return map[string]any{"front": front, "requirements": d.RequirementsDir, "archives_dir": d.ArchivesDir, "archives": archives}
}

// asDependencyError turns the host's refusal of conflicting requirements
// (pyudf._deps.RequirementConflict) into a *DependencyError; any other error
// is returned as it is.
func asDependencyError(err error, cfg Config) error {
	var pe *bridge.PythonError
	if errors.As(err, &pe) && pe.Type == "pyudf._deps.RequirementConflict" {
		return &DependencyError{Kind: "requirements", Path: cfg.Requirements, Reason: pe.Message}
	}
	return err
}

// dependencyPython is the interpreter whose pip installs the requirements:
// the one the engine runs.
func dependencyPython(cfg Config) string {
	if python := configuredPython(cfg.Python); python != "" {
		return python
	}
	interpMu.Lock()
	running := interpPython
	interpMu.Unlock()
	if cfg.Mode == Thread && running != "" && !strings.HasPrefix(running, "(") {
		return running
	}
	if cfg.Mode == Thread {
		if exe, err := exec.LookPath("python" + cgo.LinkedVersion); err == nil {
			return exe
		}
	}
	return "python3"
}

// --- python files -------------------------------------------------------------------

// stagePythonFiles checks each python file and returns the sys.path entries
// they make: one directory holding copies of the .py files (PyFlink puts a
// single file in a directory of its own too), then every directory, .zip,
// .whl and .egg file in the order given.
func stagePythonFiles(root string, files []string) ([]string, error) {
	var entries []string
	pyFiles := map[string]string{} // base name -> absolute path
	var pyNames []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, &DependencyError{Kind: "python file", Path: f, Reason: err.Error()}
		}
		info, err := os.Stat(abs)
		if err != nil {
			return nil, &DependencyError{Kind: "python file", Path: f, Reason: "no such file or directory"}
		}
		ext := strings.ToLower(filepath.Ext(abs))
		switch {
		case info.IsDir():
			entries = append(entries, abs)
		case ext == ".py":
			base := filepath.Base(abs)
			if prev, dup := pyFiles[base]; dup && prev != abs {
				return nil, &DependencyError{Kind: "python file", Path: f,
					Reason: fmt.Sprintf("has the same module name as %s", prev)}
			}
			if _, dup := pyFiles[base]; !dup {
				pyNames = append(pyNames, base)
			}
			pyFiles[base] = abs
		case ext == ".zip" || ext == ".whl" || ext == ".egg":
			zr, err := zip.OpenReader(abs)
			if err != nil {
				return nil, &DependencyError{Kind: "python file", Path: f,
					Reason: fmt.Sprintf("is not a zip archive (%v)", err)}
			}
			zr.Close()
			entries = append(entries, abs)
		default:
			return nil, &DependencyError{Kind: "python file", Path: f,
				Reason: "is not a .py, .zip, .whl or .egg file nor a directory"}
		}
	}
	if len(pyNames) == 0 {
		return entries, nil
	}
	h := sha256.New()
	contents := map[string][]byte{}
	for _, name := range pyNames {
		b, err := os.ReadFile(pyFiles[name])
		if err != nil {
			return nil, &DependencyError{Kind: "python file", Path: pyFiles[name], Reason: err.Error()}
		}
		contents[name] = b
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	dir := filepath.Join(root, "files", hex.EncodeToString(h.Sum(nil))[:16])
	err := createDir(dir, func(tmp string) error {
		for _, name := range pyNames {
			if err := os.WriteFile(filepath.Join(tmp, name), contents[name], 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, &DependencyError{Kind: "python file", Path: pyFiles[pyNames[0]], Reason: "cannot stage: " + err.Error()}
	}
	return append([]string{dir}, entries...), nil
}

// createDir makes dir, unless it exists, by filling a temporary directory
// beside it and renaming that: a directory of the cache is complete or
// absent, whoever (another engine, another process) made it first.
func createDir(dir string, fill func(tmp string) error) error {
	if fileExists(dir) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left to remove
	if err := fill(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil && !fileExists(dir) {
		return err
	} // else another engine renamed the same content into place first
	return nil
}

// --- requirements -------------------------------------------------------------------

// installLocks serialises the installs of one requirements directory within
// this process (across processes, the rename in createDir keeps it whole).
var installLocks sync.Map // dir -> *sync.Mutex

// pipTailLines is how many of pip's last output lines an install error carries.
const pipTailLines = 15

// installRequirements installs the requirements file with python's pip into
// root/requirements/<hash>, unless that exists, and returns the directory and
// whether it ran pip. The hash covers the file's content, the cache
// directory's listing and the interpreter; with a cache directory pip runs
// offline (--no-index --find-links), as set_python_requirements promises.
func installRequirements(ctx context.Context, root, python, file, cache string) (dir string, installed bool, took time.Duration, err error) {
	fail := func(reason, output string) error {
		return &DependencyError{Kind: "requirements", Path: file, Reason: reason, Output: output}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", false, 0, fail(err.Error(), "")
	}
	content, err := os.ReadFile(abs)
	if err != nil {
		return "", false, 0, fail("cannot read the requirements file: no such file", "")
	}
	identity, err := interpreterIdentity(ctx, python)
	if err != nil {
		return "", false, 0, fail(err.Error(), "")
	}
	h := sha256.New()
	fmt.Fprintf(h, "pyudf requirements 1\x00%s\x00%d\x00", identity, len(content))
	h.Write(content)
	if cache != "" {
		if cache, err = filepath.Abs(cache); err != nil {
			return "", false, 0, fail(err.Error(), "")
		}
		listing, err := os.ReadDir(cache)
		if err != nil {
			return "", false, 0, fail(fmt.Sprintf("cannot read the cache directory %s: %v", cache, errors.Unwrap(err)), "")
		}
		for _, entry := range listing {
			size := int64(-1)
			if info, err := entry.Info(); err == nil && !entry.IsDir() {
				size = info.Size()
			}
			fmt.Fprintf(h, "\x00%s\x00%d", entry.Name(), size)
		}
	}
	dir = filepath.Join(root, "requirements", hex.EncodeToString(h.Sum(nil))[:16])
	mu, _ := installLocks.LoadOrStore(dir, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if fileExists(dir) {
		return dir, false, 0, nil
	}
	start := time.Now()
	var output []byte
	err = createDir(dir, func(tmp string) error {
		args := []string{"-m", "pip", "install", "--disable-pip-version-check", "--no-input",
			"--no-warn-script-location", "--target", tmp, "-r", abs}
		if cache != "" {
			args = append(args, "--no-index", "--find-links", cache)
		}
		cmd := exec.CommandContext(ctx, python, args...)
		cmd.Dir = filepath.Dir(abs) // relative paths in the file are the file's
		cmd.Env = append(os.Environ(), "PIP_NO_INPUT=1", "PYTHONDONTWRITEBYTECODE=1")
		var err error
		output, err = cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("pip install failed (%v)", err)
		}
		return nil
	})
	if err != nil {
		return "", false, 0, fail(err.Error(), lastLines(string(output), pipTailLines))
	}
	return dir, true, time.Since(start), nil
}

// interpreterIdentities caches interpreterIdentity per interpreter.
var interpreterIdentities sync.Map

// interpreterIdentity names an interpreter for the requirements hash: its
// real path, full version and platform (an install is for one ABI).
func interpreterIdentity(ctx context.Context, python string) (string, error) {
	if id, ok := interpreterIdentities.Load(python); ok {
		return id.(string), nil
	}
	out, err := exec.CommandContext(ctx, python, "-c",
		`import sys, sysconfig; print(sys.executable, sys.version, sysconfig.get_platform(), sep="\x00")`).Output()
	if err != nil {
		return "", fmt.Errorf("cannot run Python interpreter %q: %v", python, err)
	}
	id := strings.TrimSpace(string(out))
	interpreterIdentities.Store(python, id)
	return id, nil
}

// lastLines is the last n non-empty lines of s.
func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), " \r"); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- archives -----------------------------------------------------------------------

// extractArchives extracts every archive under its target into
// root/archives/<hash> (the hash covers targets and contents) and returns that
// directory and each target's path. Every archive is checked entry by entry
// before anything of it is written.
func extractArchives(root string, archives []Archive) (string, map[string]string, error) {
	if len(archives) == 0 {
		return "", nil, nil
	}
	type prepared struct {
		path, target string
	}
	var list []prepared
	targets := map[string]string{}
	h := sha256.New()
	for _, a := range archives {
		fail := func(reason string) error { return &DependencyError{Kind: "archive", Path: a.Path, Reason: reason} }
		abs, err := filepath.Abs(a.Path)
		if err != nil {
			return "", nil, fail(err.Error())
		}
		target := a.Target
		if target == "" {
			target = filepath.Base(abs)
		}
		if target == "." || target == ".." || strings.ContainsAny(target, `/\`) || strings.ContainsRune(target, 0) {
			return "", nil, fail(fmt.Sprintf("target %q is not a plain directory name", target))
		}
		if prev, dup := targets[target]; dup {
			return "", nil, fail(fmt.Sprintf("target %q is already the target of %s", target, prev))
		}
		targets[target] = a.Path
		sum, err := fileSum(abs)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil, fail("no such file")
			}
			return "", nil, fail(err.Error())
		}
		entries, err := listArchive(abs)
		if err != nil {
			return "", nil, fail(err.Error())
		}
		if err := checkEntries(entries); err != nil {
			return "", nil, fail(err.Error())
		}
		fmt.Fprintf(h, "%s\x00%x\x00", target, sum)
		list = append(list, prepared{abs, target})
	}
	dir := filepath.Join(root, "archives", hex.EncodeToString(h.Sum(nil))[:16])
	err := createDir(dir, func(tmp string) error {
		for _, p := range list {
			if err := extractArchive(p.path, filepath.Join(tmp, p.target)); err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, &DependencyError{Kind: "archive", Path: list[0].path, Reason: "cannot extract: " + err.Error()}
	}
	out := map[string]string{}
	for _, p := range list {
		out[p.target] = filepath.Join(dir, p.target)
	}
	return dir, out, nil
}

// archiveEntry is one entry of an archive, without its data.
type archiveEntry struct {
	name string // as in the archive
	kind byte   // 'f' file, 'd' directory, 's' symlink, 'h' hard link
	link string // a link's target
	mode fs.FileMode
}

// maxZipLink bounds the target of a symlink stored in a zip (its data).
const maxZipLink = 4096

// walkArchive calls fn for every entry of a .zip, .tar, .tar.gz or .tgz
// archive, with a reader of a file entry's data; the data streams from the
// file, so an archive of any size is never held in memory.
func walkArchive(file string, fn func(e archiveEntry, data io.Reader) error) error {
	lower := strings.ToLower(file)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return walkZip(file, fn)
	case strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz"):
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		gz, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return fmt.Errorf("is not a gzip-compressed tar archive (%v)", err)
		}
		if err := walkTar(gz, fn); err != nil {
			return fmt.Errorf("is not a valid tar.gz archive (%w)", err)
		}
		return nil
	case strings.HasSuffix(lower, ".tar"):
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := walkTar(bufio.NewReader(f), fn); err != nil {
			return fmt.Errorf("is not a valid tar archive (%w)", err)
		}
		return nil
	}
	return errors.New("is not a .zip, .tar, .tar.gz or .tgz archive")
}

// entryError is fn's own error in a walk: returned as it is, not as a broken archive.
type entryError struct{ error }

func walkZip(file string, fn func(e archiveEntry, data io.Reader) error) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("is not a zip archive (%v)", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		mode := f.Mode()
		e := archiveEntry{name: f.Name, mode: mode.Perm()}
		switch {
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			e.kind = 'd'
		case mode&fs.ModeSymlink != 0:
			e.kind = 's'
		case mode.IsRegular():
			e.kind = 'f'
		default:
			return fmt.Errorf("entry %q is not a file, directory or symlink", f.Name)
		}
		var data io.ReadCloser
		if e.kind != 'd' {
			if data, err = f.Open(); err != nil {
				return fmt.Errorf("entry %q: %v", f.Name, err)
			}
		}
		if e.kind == 's' {
			link, err := io.ReadAll(io.LimitReader(data, maxZipLink+1))
			data.Close()
			if err != nil || len(link) > maxZipLink {
				return fmt.Errorf("entry %q: unreadable symlink target", f.Name)
			}
			e.link, data = string(link), nil
		}
		var r io.Reader
		if data != nil {
			r = data
		}
		err = fn(e, r)
		if data != nil {
			data.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func walkTar(r io.Reader, fn func(e archiveEntry, data io.Reader) error) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return errors.New("no entries")
			}
			return nil
		}
		if err != nil {
			return err
		}
		e := archiveEntry{name: hdr.Name, link: hdr.Linkname, mode: fs.FileMode(hdr.Mode).Perm()}
		var data io.Reader
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.kind, data = 'f', tr
		case tar.TypeDir:
			e.kind = 'd'
		case tar.TypeSymlink:
			e.kind = 's'
		case tar.TypeLink:
			e.kind = 'h'
		default:
			return entryError{fmt.Errorf("entry %q is a device, fifo or other special file", hdr.Name)}
		}
		if err := fn(e, data); err != nil {
			return entryError{err}
		}
	}
}

// listArchive is every entry of an archive (pass 1, nothing written).
func listArchive(file string) ([]archiveEntry, error) {
	var entries []archiveEntry
	err := walkArchive(file, func(e archiveEntry, _ io.Reader) error {
		entries = append(entries, e)
		return nil
	})
	return entries, unwrapEntryError(err)
}

// unwrapEntryError strips the archive-level wording off an entry's own error.
func unwrapEntryError(err error) error {
	var ee entryError
	if errors.As(err, &ee) {
		return ee.error
	}
	return err
}

// checkEntries refuses an archive any entry of which would be written
// outside its target directory: an absolute name, a name that climbs out with
// "..", a name that goes through one of the archive's symlinks, a symlink or
// hard link whose target (followed through the archive's other symlinks)
// leaves the directory, a hard link to anything but a regular file of the
// archive, and a name given twice.
func checkEntries(entries []archiveEntry) error {
	links := map[string]string{} // cleaned name -> symlink target
	kinds := map[string]byte{}
	for _, e := range entries {
		name, err := entryName(e.name)
		if err != nil {
			return err
		}
		if name == "." {
			continue // the root itself ("./" in a tar made with tar -C dir .)
		}
		if prev, dup := kinds[name]; dup && !(prev == 'd' && e.kind == 'd') {
			return fmt.Errorf("entry %q appears twice", e.name)
		}
		kinds[name] = e.kind
		if e.kind == 's' {
			links[name] = e.link
		}
	}
	for _, e := range entries {
		name, _ := entryName(e.name)
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if _, ok := links[p]; ok {
				return fmt.Errorf("entry %q goes through the symlink %q", e.name, p)
			}
		}
		switch e.kind {
		case 's':
			if e.link == "" || path.IsAbs(e.link) {
				return fmt.Errorf("entry %q: symlink to %q points outside the target directory", e.name, e.link)
			}
			if _, ok := resolveInside(links, path.Dir(name), e.link, 0); !ok {
				return fmt.Errorf("entry %q: symlink to %q points outside the target directory", e.name, e.link)
			}
		case 'h':
			if path.IsAbs(e.link) {
				return fmt.Errorf("entry %q: hard link to %q points outside the target directory", e.name, e.link)
			}
			to, ok := resolveInside(links, ".", e.link, 0)
			if !ok {
				return fmt.Errorf("entry %q: hard link to %q points outside the target directory", e.name, e.link)
			}
			if kinds[to] != 'f' {
				return fmt.Errorf("entry %q: hard link to %q, which is not a regular file of the archive", e.name, e.link)
			}
		}
	}
	return nil
}

// entryName is an entry's name cleaned, refused if absolute or climbing out.
func entryName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q has an invalid name", name)
	}
	if path.IsAbs(name) || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return "", fmt.Errorf("entry %q is an absolute path", name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q escapes the target directory", name)
	}
	return clean, nil
}

// maxLinkDepth bounds symlink chains, as the kernel does (ELOOP).
const maxLinkDepth = 40

// resolveInside follows target from directory dir through the archive's
// symlinks, component by component, as the kernel would once extracted, and
// returns the path it reaches, or false if it leaves the root.
func resolveInside(links map[string]string, dir, target string, depth int) (string, bool) {
	if depth > maxLinkDepth || path.IsAbs(target) {
		return "", false
	}
	var cur []string
	if dir != "." && dir != "" {
		cur = strings.Split(dir, "/")
	}
	for _, comp := range strings.Split(target, "/") {
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "", false
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, comp)
		if link, ok := links[strings.Join(cur, "/")]; ok {
			resolved, ok := resolveInside(links, path.Join(append([]string{"."}, cur[:len(cur)-1]...)...), link, depth+1)
			if !ok {
				return "", false
			}
			cur = nil
			if resolved != "." {
				cur = strings.Split(resolved, "/")
			}
		}
	}
	if len(cur) == 0 {
		return ".", true
	}
	return strings.Join(cur, "/"), true
}

// extractArchive writes a checked archive under dir (which it creates),
// streaming each file from the archive (pass 2).
func extractArchive(file, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var hardLinks []archiveEntry
	err := walkArchive(file, func(e archiveEntry, data io.Reader) error {
		name, err := entryName(e.name)
		if err != nil || name == "." {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if e.kind == 'd' {
			return os.MkdirAll(dst, 0o755)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch e.kind {
		case 'f':
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644|(e.mode&0o111))
			if err != nil {
				return err
			}
			_, err = io.Copy(f, data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		case 's':
			return os.Symlink(e.link, dst)
		case 'h':
			hardLinks = append(hardLinks, e) // after the files they name
		}
		return nil
	})
	if err != nil {
		return unwrapEntryError(err)
	}
	for _, e := range hardLinks {
		name, _ := entryName(e.name)
		to, _ := entryName(e.link)
		if err := os.Link(filepath.Join(dir, filepath.FromSlash(to)), filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return err
		}
	}
	return nil
}

// --- PyFlink's configuration keys ---------------------------------------------------

// SetPyFlinkOptions sets the dependency options from PyFlink's configuration
// keys, each given as "key=value", so that a Go service can take a PyFlink
// job's settings unchanged:
//
//	python.files         comma-separated .py, .zip, .whl, .egg files and directories (-pyfs)
//	python.requirements  requirements.txt, or requirements.txt#cache_dir (-pyreq)
//	python.archives      comma-separated archive or archive#target (-pyarch)
//	python.executable    the interpreter (-pyexec)
//
// python.files and python.archives add to what c has; the others replace
// it. Any other key is an error: nothing is silently ignored.
func (c *Config) SetPyFlinkOptions(options ...string) error {
	for _, opt := range options {
		key, value, ok := strings.Cut(opt, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		fail := func(reason string) error { return &DependencyError{Kind: "option", Path: opt, Reason: reason} }
		if !ok {
			return fail(`want "key=value"`)
		}
		if value == "" {
			return fail("empty value")
		}
		switch key {
		case "python.files":
			for _, f := range strings.Split(value, ",") {
				if f = strings.TrimSpace(f); f == "" {
					return fail("empty file name in the list")
				}
				c.PythonFiles = append(c.PythonFiles, f)
			}
		case "python.requirements":
			file, cache, _ := strings.Cut(value, "#")
			if file == "" {
				return fail("no requirements file before '#'")
			}
			c.Requirements, c.RequirementsCache = file, cache
		case "python.archives":
			for _, a := range strings.Split(value, ",") {
				p, target, _ := strings.Cut(strings.TrimSpace(a), "#")
				if p == "" {
					return fail("empty archive name in the list")
				}
				c.Archives = append(c.Archives, Archive{Path: p, Target: target})
			}
		case "python.executable":
			c.Python = value
		default:
			return fail("unsupported key (want python.files, python.requirements, python.archives or python.executable)")
		}
	}
	return nil
}

// fileSum is the SHA-256 of a file's content.
func fileSum(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// absolutePath is path made absolute against this process's working directory
// (as it is, if that fails).
func absolutePath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// absolutePaths is absolutePath of each entry: Config.Path is relative to
// this process's working directory, which process-mode workers with archives
// do not share.
func absolutePaths(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, absolutePath(p))
	}
	return out
}
