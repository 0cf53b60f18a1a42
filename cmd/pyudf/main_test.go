package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The tests run the command as users do: built once, run as a subprocess.
var (
	binary  string // the built command
	dataDir string // data files written by TestMain
	udfs    string // testdata/udfs.py, absolute (tracebacks name it so)
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "pyudf-cli-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "pyudf")
		if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		dataDir = dir
		if udfs, err = filepath.Abs("testdata/udfs.py"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := writeData(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// writeData writes the CSV files and, with pyarrow, a Parquet file.
func writeData(dir string) error {
	files := map[string]string{
		"pairs.csv":  "a,b\n1,2\n3,4\n5,6\n",
		"nulls.csv":  "a,b\n1,2\n3,4\n,6\n",
		"floats.csv": "x\n1.5\n2\n",
		"ints.csv":   "n\n1\n2\n",
		"text.csv":   "s\nhello there\nbig world\n",
		"bad.csv":    "a,b\nx,1\n",
		"data.json":  "{}",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	python := os.Getenv("PYUDF_PYTHON")
	if python == "" {
		python = "python3"
	}
	out, err := exec.Command(python, "-c", `import sys, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"a": list(range(1000)), "b": [2] * 1000}), sys.argv[1])`,
		filepath.Join(dir, "range.parquet")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("writing range.parquet: %v\n%s", err, out)
	}
	return nil
}

// pyudf runs the command in testdata and returns stdout, stderr and the exit status.
func pyudf(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = "testdata"
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("pyudf %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errs.String(), code
}

// expect is one run's outcome. stderr is exact unless stderrRE is set.
type expect struct {
	args     []string
	stdout   string
	stderr   string
	stderrRE string
	code     int
	// every: run in every mode (cliModes), not in thread mode only: each
	// run starts an engine, so the other modes take the essentials.
	every bool
}

// data is the path of a data file TestMain wrote.
func data(name string) string { return filepath.Join(dataDir, name) }

func check(t *testing.T, c expect) {
	t.Helper()
	stdout, stderr, code := pyudf(t, c.args...)
	name := "pyudf " + strings.Join(c.args, " ")
	if code != c.code {
		t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, code, c.code, stdout, stderr)
	}
	if stdout != c.stdout {
		t.Errorf("%s: stdout:\n%s\nwant:\n%s", name, stdout, c.stdout)
	}
	stderr = strings.ReplaceAll(stderr, dataDir, "DATA")
	if c.stderrRE != "" {
		if !regexp.MustCompile("^" + c.stderrRE + "$").MatchString(stderr) {
			t.Errorf("%s: stderr:\n%s\nwant it to match:\n%s", name, stderr, c.stderrRE)
		}
	} else if stderr != c.stderr {
		t.Errorf("%s: stderr:\n%s\nwant:\n%s", name, stderr, c.stderr)
	}
}

// cliModes are the -mode values to run with: subinterpreters where the
// interpreter has them (3.12+).
func cliModes(t *testing.T) []string {
	modes := []string{"thread", "process"}
	stdout, _, _ := pyudf(t, "call", "-mode", "subinterpreters", "udfs.py", "add", "1", "2")
	if stdout == "3\n" {
		modes = append(modes, "subinterpreters")
	}
	return modes
}

const rateRE = `\d+ rows in [0-9.]+(ns|µs|ms|s|m[0-9.]+s): \d+ rows/s\n`

func TestInspect(t *testing.T) {
	want := `add    scalar           (BIGINT, BIGINT) -> BIGINT
shout  scalar           (STRING) -> STRING
show   scalar           (BOOLEAN, DOUBLE, DATE, STRING, INT) -> STRING
mix    scalar           (ARRAY<INT>, MAP<STRING, DOUBLE>, ROW<a INT, b STRING>) -> ROW<n INT, total DOUBLE, b STRING>
parse  scalar           (STRING) -> BIGINT
twice  pandas           (DOUBLE) -> DOUBLE
inc    arrow            (BIGINT) -> BIGINT
words  table            (STRING) -> ROW<f0 STRING, f1 INT>
Total  aggregate        (?) -> ?
total  aggregate        (BIGINT) -> BIGINT
Echo   async            (STRING) -> STRING
`
	for _, mode := range cliModes(t) {
		check(t, expect{args: []string{"inspect", "-mode", mode, "udfs.py"}, stdout: want})
	}
}

func TestCall(t *testing.T) {
	traceback := fmt.Sprintf(`Traceback (most recent call last):
  File "%s", line 28, in parse
    return int(s)
`, udfs)
	for _, mode := range cliModes(t) {
		m := []string{"call", "-mode", mode, "udfs.py"}
		for _, c := range []expect{
			{args: []string{"add", "1", "2"}, stdout: "3\n", every: true},
			{args: []string{"add", "-1", "-2"}, stdout: "-3\n"},
			{args: []string{"shout", "hi"}, stdout: "HI!\n", stderr: "shouting hi\n", every: true},
			{args: []string{"show", "true", "2.5", "2024-02-29", "text", "NULL"},
				stdout: "(True, 2.5, datetime.date(2024, 2, 29), 'text', None)\n"},
			{args: []string{"mix", "[1, 2, 3]", `{"x": 1.5, "y": 2}`, `{"a": 1, "b": "z"}`},
				stdout: `{"n": 6, "total": 3.5, "b": "z"}` + "\n", every: true},
			{args: []string{"mix", "[]", "{}", `[7, "positional"]`},
				stdout: `{"n": 0, "total": 0, "b": "positional"}` + "\n"},
			{args: []string{"words", "hello big world"}, stdout: "f0\tf1\nhello\t5\nbig\t3\nworld\t5\n", every: true},
			{args: []string{"total", "5"}, stdout: "5\n"},
			{args: []string{"Echo", "async hello"}, stdout: "async hello\n"},
			{args: []string{"twice", "1.5"}, stdout: "3\n", every: true}, // a Pandas UDF on a batch of one row
			{args: []string{"twice", "NULL"}, stdout: "NULL\n"},
			{args: []string{"inc", "41"}, stdout: "42\n"},
		} {
			if mode == "thread" || c.every {
				c.args = append(append([]string{}, m...), c.args...)
				check(t, c)
			}
		}
		// A Python exception prints its traceback.
		check(t, expect{args: append(m, "parse", "x"),
			stderrRE: regexp.QuoteMeta(traceback) + `(.*\n)*ValueError: invalid literal for int\(\) with base 10: 'x'\n`, code: 1})
	}
}

func TestEval(t *testing.T) {
	for _, mode := range cliModes(t) {
		m := []string{"eval", "-mode", mode}
		for _, c := range []expect{
			{args: []string{"udfs.py", "add", data("pairs.csv")}, stdout: "a\tb\tadd\n1\t2\t3\n3\t4\t7\n5\t6\t11\n", stderrRE: rateRE, every: true},
			{args: []string{"-head", "1", "udfs.py", "add", data("pairs.csv")}, stdout: "a\tb\tadd\n1\t2\t3\n... 2 more rows\n", stderrRE: rateRE},
			{args: []string{"-head", "2", "udfs.py", "add", data("range.parquet")}, stdout: "a\tb\tadd\n0\t2\t2\n1\t2\t3\n... 998 more rows\n", stderrRE: "1000 " + rateRE[4:]},
			{args: []string{"udfs.py", "twice", data("floats.csv")}, stdout: "x\ttwice\n1.5\t3\n2\t4\n", stderrRE: rateRE, every: true},
			{args: []string{"udfs.py", "inc", data("range.parquet"), "-head", "1"}, stdout: "", code: 2,
				stderr: "pyudf: eval takes a file, a function and a data file: pyudf eval udfs.py f data.parquet\n"},
			{args: []string{"-head", "1", "udfs.py", "words", data("text.csv")}, stdout: "row\tf0\tf1\n0\thello\t5\n... 3 more rows\n", stderrRE: rateRE},
			{args: []string{"udfs.py", "total", data("floats.csv")}, code: 1,
				stderr: "pyudf: cannot read DATA/floats.csv: ValueError: floats.csv: column 1 (x): cannot read double as int64: Float value 1.500000 was truncated converting to int64\n"},
			{args: []string{"udfs.py", "add", data("nulls.csv")}, code: 1,
				stderrRE: `Traceback \(most recent call last\):\n(.*\n)*TypeError: unsupported operand type\(s\) for \+: 'NoneType' and 'int'\n\(row 3 of DATA/nulls.csv\)\n`, every: true},
		} {
			if mode == "thread" || c.every {
				c.args = append(append([]string{}, m...), c.args...)
				check(t, c)
			}
		}
	}
	// An aggregate accumulates every row under one key; an Arrow UDF gets pyarrow Arrays.
	check(t, expect{args: []string{"eval", "udfs.py", "total", data("ints.csv")}, stdout: "3\n", stderrRE: "2 " + rateRE[4:]})
	check(t, expect{args: []string{"eval", "udfs.py", "inc", data("ints.csv")}, stdout: "n\tinc\n1\t2\n2\t3\n", stderrRE: rateRE})
	check(t, expect{args: []string{"eval", "udfs.py", "inc", data("range.parquet")}, code: 1,
		stderr: "pyudf: cannot read DATA/range.parquet: ValueError: range.parquet has 2 columns (a, b); the function takes 1 argument\n"})
}

// Every bad input is one line on stderr and exit status 2 (the command
// line) or 1 (a failure while running).
func TestBadInput(t *testing.T) {
	for _, c := range []expect{
		{args: nil, code: 2, stderr: "pyudf: no subcommand: want inspect, call or eval (pyudf help)\n"},
		{args: []string{"frob", "udfs.py"}, code: 2, stderr: "pyudf: unknown subcommand \"frob\": want inspect, call or eval\n"},
		{args: []string{"inspect"}, code: 2, stderr: "pyudf: inspect takes one file: pyudf inspect udfs.py\n"},
		{args: []string{"inspect", "udfs.py", "extra"}, code: 2, stderr: "pyudf: inspect takes one file: pyudf inspect udfs.py\n"},
		{args: []string{"call", "udfs.py"}, code: 2, stderr: "pyudf: call takes a file, a function and its arguments: pyudf call udfs.py add 1 2\n"},
		{args: []string{"inspect", "-mode", "fast", "udfs.py"}, code: 2, stderr: "pyudf: inspect: -mode \"fast\": want thread, process or subinterpreters\n"},
		{args: []string{"inspect", "-frob", "udfs.py"}, code: 2, stderr: "pyudf: inspect: flag provided but not defined: -frob\n"},
		{args: []string{"call", "-param", "novalue", "udfs.py", "add", "1", "2"}, code: 2,
			stderr: "pyudf: call: invalid value \"novalue\" for flag -param: want key=value, not \"novalue\"\n"},
		{args: []string{"inspect", "missing.py"}, code: 1, stderr: "pyudf: missing.py: no such file\n"},
		{args: []string{"inspect", "syntax_error.py"}, code: 1, stderr: "pyudf: syntax_error.py does not import: SyntaxError: invalid syntax (syntax_error.py, line 1)\n"},
		{args: []string{"call", "import_error.py", "f"}, code: 1, stderr: "pyudf: import_error.py does not import: ModuleNotFoundError: No module named 'no_such_module_here'\n"},
		{args: []string{"call", "udfs.py", "nope", "1"}, code: 2,
			stderr: "pyudf: udfs.py has no function \"nope\" (it has: add, shout, show, mix, parse, twice, inc, words, Total, total, Echo)\n"},
		{args: []string{"call", "udfs.py", "add", "1"}, code: 2, stderr: "pyudf: function \"add\" takes 2 arguments (BIGINT, BIGINT), got 1\n"},
		{args: []string{"call", "udfs.py", "parse", "1", "2"}, code: 2, stderr: "pyudf: function \"parse\" takes 1 argument (STRING), got 2\n"},
		{args: []string{"call", "udfs.py", "add", "1", "two"}, code: 2, stderr: "pyudf: function \"add\": argument 2: \"two\" is not an integer (BIGINT)\n"},
		{args: []string{"call", "udfs.py", "show", "yes", "1", "2024-01-01", "s", "1"}, code: 2,
			stderr: "pyudf: function \"show\": argument 1: \"yes\" is not true or false (BOOLEAN)\n"},
		{args: []string{"call", "udfs.py", "show", "true", "1", "01/02/2024", "s", "1"}, code: 2,
			stderr: "pyudf: function \"show\": argument 3: \"01/02/2024\" is not a date (2006-01-02) (DATE)\n"},
		{args: []string{"call", "udfs.py", "show", "true", "1", "2024-01-01", "s", "3000000000"}, code: 2,
			stderr: "pyudf: function \"show\": argument 5: 3000000000 overflows INT\n"},
		{args: []string{"call", "udfs.py", "mix", "[1,", "{}", "[1, \"a\"]"}, code: 2,
			stderr: "pyudf: function \"mix\": argument 1: \"[1,\" is not JSON for a ARRAY<INT>: unexpected EOF\n"},
		{args: []string{"call", "udfs.py", "mix", "[\"a\"]", "{}", "[1, \"a\"]"}, code: 2,
			stderr: "pyudf: function \"mix\": argument 1: [0]: \"a\" is not an integer (INT)\n"},
		{args: []string{"call", "udfs.py", "mix", "[]", "{}", "{\"a\": 1}"}, code: 2,
			stderr: "pyudf: function \"mix\": argument 3: {\"a\":1} has no field \"b\" (ROW<a INT, b STRING>)\n"},
		{args: []string{"call", "udfs.py", "twice", "x"}, code: 2,
			stderr: "pyudf: function \"twice\": argument 1: \"x\" is not a number (DOUBLE)\n"},
		{args: []string{"eval", "udfs.py", "add", data("missing.csv")}, code: 1, stderr: "pyudf: DATA/missing.csv: no such file\n"},
		{args: []string{"eval", "udfs.py", "add", data("data.json")}, code: 2, stderr: "pyudf: DATA/data.json: want a .csv or .parquet file\n"},
		{args: []string{"eval", "udfs.py", "add", data("bad.csv")}, code: 1,
			stderr: "pyudf: cannot read DATA/bad.csv: ValueError: bad.csv: column 1 (a): cannot read string as int64: Failed to parse string: 'x' as a scalar of type int64\n"},
		{args: []string{"call", "udfs.py", "LIMIT"}, code: 2,
			stderr: "pyudf: udfs.py has no function \"LIMIT\": 10 is not a function (it has: add, shout, show, mix, parse, twice, inc, words, Total, total, Echo)\n"},
		{args: []string{"inspect", "."}, code: 1, stderr: "pyudf: . is a directory\n"},
		{args: []string{"eval", "udfs.py", "add", dataDir + "/"}, code: 2, stderr: "pyudf: DATA/: want a .csv or .parquet file\n"},
		{args: []string{"eval", "udfs.py", "nope", data("pairs.csv")}, code: 2,
			stderr: "pyudf: udfs.py has no function \"nope\" (it has: add, shout, show, mix, parse, twice, inc, words, Total, total, Echo)\n"},
	} {
		check(t, c)
	}
}

func TestHelp(t *testing.T) {
	check(t, expect{args: []string{"help"}, stdout: usage})
	check(t, expect{args: []string{"call", "-h"}, stdout: usage})
}

func TestLifecycleAndDeadlines(t *testing.T) {
	for _, c := range []expect{
		{args: []string{"inspect", "lifecycle.py"}, stdout: `spin       scalar           (BIGINT) -> BIGINT
Greeter    scalar           (STRING) -> STRING
Broken     scalar           (STRING) -> STRING
NeedsArgs  error            TypeError: NeedsArgs.__init__() missing 1 required positional argument: 'k'
`},
		{args: []string{"inspect", "empty.py"}, stdout: "empty.py defines no functions\n"},
		{args: []string{"call", "lifecycle.py", "Greeter", "you"}, stdout: "hello, you\n"},
		{args: []string{"call", "-param", "greeting=hi", "lifecycle.py", "Greeter", "you"}, stdout: "hi, you\n"},
		{args: []string{"call", "-mode", "process", "-param", "greeting=hi", "lifecycle.py", "Greeter", "you"}, stdout: "hi, you\n"},
		{args: []string{"call", "lifecycle.py", "Broken", "x"}, code: 1, stderr: fmt.Sprintf(`Traceback (most recent call last):
  File "%s", line 24, in open
    raise RuntimeError("no model file")
RuntimeError: no model file
`, strings.Replace(udfs, "udfs.py", "lifecycle.py", 1))},
		{args: []string{"call", "lifecycle.py", "NeedsArgs", "1"}, code: 1,
			stderr: "pyudf: function \"NeedsArgs\": TypeError: NeedsArgs.__init__() missing 1 required positional argument: 'k'\n"},
		{args: []string{"call", "-timeout", "500ms", "lifecycle.py", "spin", "1"}, code: 1,
			stderr: "spinning\npyudf: function \"spin\" interrupted: context deadline exceeded (-timeout)\n"},
		{args: []string{"call", "-timeout", "-1s", "lifecycle.py", "spin", "1"}, code: 2,
			stderr: "pyudf: call: -timeout -1s: want a positive duration\n"},
	} {
		check(t, c)
	}
}

// Ctrl-C interrupts the running Python code: one line, exit status 1.
func TestInterrupt(t *testing.T) {
	cmd := exec.Command(binary, "call", "lifecycle.py", "spin", "1")
	cmd.Dir = "testdata"
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("spinning\n"))
	if _, err := io.ReadFull(stderr, buf); err != nil || string(buf) != "spinning\n" {
		t.Fatalf("stderr starts %q, %v; want spinning", buf, err)
	}
	cmd.Process.Signal(os.Interrupt)
	rest, _ := io.ReadAll(stderr)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	if want := "pyudf: function \"spin\" interrupted: context canceled (interrupt)\n"; string(rest) != want {
		t.Fatalf("stderr after spinning: %q, want %q", rest, want)
	}
}

// Arguments of every kind of SQL type parse, and results print, as the
// docs say; undeclared arguments are what they look like.
func TestTypes(t *testing.T) {
	check(t, expect{args: []string{"call", "types.py", "echo", "2024-02-29", "2024-02-29 10:11:12.5", "10:11:12.25",
		"12.3", "abc", `{"k": 1, "a": 2}`, "2024-02-29T10:11:12+02:00", "0.5"},
		stdout: `{"d": "2024-02-29", "ts": "2024-02-29 10:11:12.5", "t": "10:11:12.25", "dec": 12.30, "b": "0x616263", ` +
			`"m": {"a": 2, "k": 1}, "ltz": "2024-02-29T08:11:12Z", "f": 0.5}` + "\n"})
	check(t, expect{args: []string{"call", "types.py", "untyped", "1", "2.5", "true", "NULL", `[1, {"a": null}]`, "text"},
		stdout: "(1, 2.5, True, None, [1, {'a': None}], 'text')\n"})
	check(t, expect{args: []string{"call", "types.py", "echo", "2024-02-29", "noon", "10:11:12", "1", "b", "{}", "2024-02-29", "1"},
		code: 2, stderr: `pyudf: function "echo": argument 2: "noon" is not a timestamp (2006-01-02 15:04:05.999999, or RFC 3339) (TIMESTAMP(3))` + "\n"})
	check(t, expect{args: []string{"call", "types.py", "echo", "2024-02-29", "2024-02-29", "10:11:12", "1", "b", `{"k": "v"}`, "2024-02-29", "1"},
		code: 2, stderr: `pyudf: function "echo": argument 6: ["k"]: "v" is not an integer (INT)` + "\n"})
}
