// Command pyudf runs the Python UDFs of a file the way a Go program using
// package engine runs them, for the people who write the Python:
//
//	pyudf inspect udfs.py                 list the functions, their kinds and declared types
//	pyudf call udfs.py add 1 2            call one function on one row
//	pyudf eval udfs.py f data.parquet     run one function over a CSV or Parquet file
//
// Flags (before or after the subcommand's name): -mode thread|process|subinterpreters,
// -python (the interpreter whose installation and virtualenv the engine
// uses; default $PYUDF_PYTHON, else python3 on PATH), -param key=value (a
// job parameter, repeatable), and for eval -head N.
//
// Exit status: 0 success, 1 a failure while running (the file does not
// import, the function raised, the data file cannot be read), 2 a command
// line that does not fit (unknown subcommand or function, wrong number of
// arguments, an argument that does not parse as its declared type). Every
// failure is one line on stderr, except a Python exception raised by the
// function, which prints its traceback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

const usage = `usage:
  pyudf inspect [flags] udfs.py
  pyudf call [flags] udfs.py function [argument ...]
  pyudf eval [flags] udfs.py function data.csv|data.parquet
flags:
  -mode thread|process|subinterpreters   how Python runs (default thread)
  -python path                           the interpreter (default $PYUDF_PYTHON, else python3)
  -param key=value                       a job parameter (repeatable)
  -head N                                eval: rows of the result to print (default 10)
  -timeout D                             the deadline of the function's run (call, eval), e.g. 5s
  -warmup=false                          eval: time the first run (a warm-up run on the first row is not timed)
`

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // something failed while running
	exitUsage   = 2 // the command line does not fit
)

// failure is an error with its exit status; trace, when set, is printed
// (a Python traceback) instead of the one line.
type failure struct {
	code  int
	msg   string
	trace string
}

func (f *failure) Error() string { return f.msg }

func usageErr(format string, args ...any) error {
	return &failure{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func runErr(format string, args ...any) error {
	return &failure{code: exitFailure, msg: fmt.Sprintf(format, args...)}
}

// errHelp is -h or -help after a subcommand: the usage, on stdout.
var errHelp = errors.New("help")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the flags every subcommand takes.
type options struct {
	mode    engine.Mode
	python  string
	params  map[string]string
	head    int
	warmup  bool
	timeout time.Duration
}

// run runs one command line and returns its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	if err == nil {
		return exitOK
	}
	var f *failure
	if !errors.As(err, &f) {
		f = &failure{code: exitFailure, msg: err.Error()}
	}
	if f.trace != "" {
		fmt.Fprint(stderr, strings.TrimRight(f.trace, "\n")+"\n")
	} else {
		// the engine's errors start "pyudf: " too: one prefix for the line
		fmt.Fprintln(stderr, "pyudf: "+strings.ReplaceAll(firstLine(f.msg), "pyudf: ", ""))
	}
	return f.code
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("no subcommand: want inspect, call or eval (pyudf help)")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "inspect", "call", "eval":
	default:
		return usageErr("unknown subcommand %q: want inspect, call or eval", cmd)
	}
	opts, pos, err := parseFlags(cmd, rest)
	if err == errHelp {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "inspect":
		if len(pos) != 1 {
			return usageErr("inspect takes one file: pyudf inspect udfs.py")
		}
	case "call":
		if len(pos) < 2 {
			return usageErr("call takes a file, a function and its arguments: pyudf call udfs.py add 1 2")
		}
	case "eval":
		if len(pos) != 3 {
			return usageErr("eval takes a file, a function and a data file: pyudf eval udfs.py f data.parquet")
		}
	}
	// Ctrl-C interrupts the Python code (the engine raises Cancelled in it);
	// a second one ends the process, for code blocked in C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	s, err := open(ctx, opts, pos[0], stderr)
	if err != nil {
		return err
	}
	defer s.close()
	switch cmd {
	case "inspect":
		return s.inspect(ctx, stdout)
	case "call":
		return s.call(ctx, pos[1], pos[2:], stdout)
	default:
		return s.eval(ctx, pos[1], pos[2], stdout, stderr)
	}
}

// running is the context of the function's run: ctx with -timeout.
func (s *session) running(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.timeout > 0 {
		return context.WithTimeout(ctx, s.opts.timeout)
	}
	return context.WithCancel(ctx)
}

// parseFlags parses the flags, which may come anywhere before the function's
// arguments: flag stops at the first positional argument, so the flags after
// the file are parsed again until the function's name.
func parseFlags(cmd string, args []string) (options, []string, error) {
	opts := options{params: map[string]string{}, head: 10}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mode := fs.String("mode", "thread", "")
	fs.StringVar(&opts.python, "python", "", "")
	fs.IntVar(&opts.head, "head", 10, "")
	fs.BoolVar(&opts.warmup, "warmup", true, "")
	fs.DurationVar(&opts.timeout, "timeout", 0, "")
	fs.Func("param", "", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, not %q", s)
		}
		opts.params[k] = v
		return nil
	})
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return opts, nil, errHelp
		} else if err != nil {
			return opts, nil, usageErr("%s: %v", cmd, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
		if len(pos) == 2 { // the function's name: the rest are its arguments ("-1" included)
			pos = append(pos, args...)
			break
		}
	}
	switch *mode {
	case "thread":
		opts.mode = engine.Thread
	case "process":
		opts.mode = engine.Process
	case "subinterpreters", "subinterp":
		opts.mode = engine.Subinterpreters
	default:
		return opts, nil, usageErr("%s: -mode %q: want thread, process or subinterpreters", cmd, *mode)
	}
	if opts.timeout < 0 {
		return opts, nil, usageErr("%s: -timeout %s: want a positive duration", cmd, opts.timeout)
	}
	if opts.head < 0 {
		return opts, nil, usageErr("%s: -head %d: want 0 or more rows", cmd, opts.head)
	}
	if opts.python == "" {
		opts.python = os.Getenv("PYUDF_PYTHON")
	}
	if opts.python == "" {
		if p, err := exec.LookPath("python3"); err == nil {
			opts.python = p
		}
	}
	return opts, pos, nil
}

// session is an engine with the user's file loaded.
type session struct {
	opts   options
	file   string
	eng    *engine.Engine
	mod    *engine.Module
	reader *engine.Engine // eval in process mode: a thread-mode engine that reads data files
	logger *slog.Logger
}

func open(ctx context.Context, opts options, file string, stderr io.Writer) (*session, error) {
	s := &session{opts: opts, file: file, logger: slog.New(pythonOutput{w: stderr})}
	if err := checkFile(file); err != nil {
		return nil, err
	}
	eng, err := engine.New(ctx, s.config(opts.mode))
	if err != nil {
		return nil, runErr("cannot start Python: %v", err)
	}
	s.eng = eng
	mod, err := eng.LoadFile(ctx, file)
	if err != nil {
		eng.Close()
		var pe *bridge.PythonError
		if errors.As(err, &pe) {
			return nil, runErr("%s does not import: %s", file, exceptionLine(pe))
		}
		return nil, runErr("%s does not load: %v", file, err)
	}
	s.mod = mod
	return s, nil
}

// checkFile refuses a path that is not a readable file, in one line.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return runErr("%s: no such file", path)
	case err != nil:
		return runErr("%v", err)
	case fi.IsDir():
		return runErr("%s is a directory", path)
	}
	return nil
}

func (s *session) config(mode engine.Mode) engine.Config {
	return engine.Config{Mode: mode, Python: s.opts.python, JobParameters: s.opts.params,
		Logger: s.logger, Workers: 1, Interpreters: 2}
}

func (s *session) close() {
	s.eng.Close()
	if s.reader != nil {
		s.reader.Close()
	}
}

// exceptionLine is "Type: message" of a Python exception.
func exceptionLine(pe *bridge.PythonError) string {
	if pe.Message == "" {
		return pe.Type
	}
	return pe.Type + ": " + firstLine(pe.Message)
}

// describe finds the function name as the engine sees it. A callable that
// Functions does not list (imported, private) is opened as it is; a name
// that is not there is a usage error.
func (s *session) describe(ctx context.Context, name string) (engine.FunctionInfo, error) {
	infos, err := s.mod.Functions(ctx)
	if err != nil {
		return engine.FunctionInfo{}, runErr("%v", err)
	}
	var names []string
	for _, f := range infos {
		if f.Name == name {
			if f.Err != nil {
				return f, runErr("%v", f.Err)
			}
			return f, nil
		}
		names = append(names, f.Name)
	}
	f, err := s.mod.Function(ctx, name)
	if errors.Is(err, engine.ErrUnknownFunction) {
		return engine.FunctionInfo{}, usageErr("%s has no function %q (it has: %s)", s.file, name, strings.Join(names, ", "))
	}
	var pe *bridge.PythonError
	if errors.As(err, &pe) && pe.Type == "TypeError" && strings.HasSuffix(pe.Message, " is not a function") && !hasFrames(pe) {
		// the runtime's refusal (pyudf.udf.signature) of an attribute that is not callable
		return engine.FunctionInfo{}, usageErr("%s has no function %q: %s (it has: %s)", s.file, name, pe.Message, strings.Join(names, ", "))
	}
	if err != nil {
		return engine.FunctionInfo{}, openErr(name, err)
	}
	return engine.FunctionInfo{Name: name, Kind: "scalar", FuncType: "general",
		InputTypes: f.InputTypes(), ResultType: f.ResultType()}, nil
}

// openErr is the failure of opening a function: its open() raised, or it
// is not a function.
func openErr(name string, err error) error {
	var pe *bridge.PythonError
	if errors.As(err, &pe) && hasFrames(pe) {
		return &failure{code: exitFailure, msg: err.Error(), trace: pe.Traceback}
	}
	return runErr("%v", err)
}

// hasFrames tells an exception raised in the user's code, whose traceback
// shows its frames, from one the runtime raised, which has none to show.
func hasFrames(pe *bridge.PythonError) bool {
	return strings.HasPrefix(pe.Traceback, "Traceback (most recent call last):")
}

// callErr classifies an error of a call: an argument that does not convert
// or a wrong count is the command line's (2), the rest is the run's (1),
// with the traceback of a Python exception.
func callErr(err error) error {
	var pe *bridge.PythonError
	var ce *bridge.ConversionError
	switch {
	case errors.As(err, &pe) && hasFrames(pe):
		return &failure{code: exitFailure, msg: err.Error(), trace: pe.Traceback}
	case errors.As(err, &ce) && strings.HasPrefix(ce.Path, "argument"):
		return usageErr("%v", err)
	case errors.Is(err, engine.ErrArgumentCount):
		return usageErr("%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return runErr("%v (-timeout)", err)
	case errors.Is(err, context.Canceled):
		return runErr("%v (interrupt)", err)
	}
	return runErr("%v", err)
}

// kindName is how inspect names a function's kind.
func kindName(f engine.FunctionInfo) string {
	switch {
	case f.Async:
		return "async"
	case f.Kind == "scalar" && f.FuncType != "general":
		return f.FuncType // pandas, arrow
	case f.Kind == "aggregate" && f.FuncType == "pandas":
		return "pandas-aggregate"
	}
	return strings.ReplaceAll(f.Kind, " ", "-") // scalar, table, aggregate, table-aggregate
}

// signature is "(BIGINT, BIGINT) -> BIGINT", with "?" for what is undeclared.
func signature(f engine.FunctionInfo) string {
	in := "(?)"
	if f.InputTypes != nil {
		parts := make([]string, len(f.InputTypes))
		for i, t := range f.InputTypes {
			parts[i] = t.String()
		}
		in = "(" + strings.Join(parts, ", ") + ")"
	}
	out := "?"
	if f.ResultType != nil {
		out = f.ResultType.String()
	}
	return in + " -> " + out
}

func (s *session) inspect(ctx context.Context, stdout io.Writer) error {
	infos, err := s.mod.Functions(ctx)
	if err != nil {
		return runErr("%v", err)
	}
	if len(infos) == 0 {
		fmt.Fprintf(stdout, "%s defines no functions\n", s.file)
		return nil
	}
	width := 0
	for _, f := range infos {
		width = max(width, len(f.Name))
	}
	for _, f := range infos {
		if f.Err != nil {
			fmt.Fprintf(stdout, "%-*s  %-16s %s\n", width, f.Name, "error", strings.TrimPrefix(f.Err.Error(), fmt.Sprintf("pyudf: function %q: ", f.Name)))
			continue
		}
		fmt.Fprintf(stdout, "%-*s  %-16s %s\n", width, f.Name, kindName(f), signature(f))
	}
	return nil
}

// pythonOutput is the engine's slog handler: print output from the UDFs
// goes to stderr as it is; Python's log records of WARNING and above with
// their level and logger.
type pythonOutput struct{ w io.Writer }

func (h pythonOutput) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h pythonOutput) Handle(_ context.Context, r slog.Record) error {
	logger := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "logger" {
			logger = a.Value.String()
		}
		return true
	})
	switch {
	case logger == "stdout" || logger == "stderr":
		_, err := io.WriteString(h.w, r.Message+"\n")
		return err
	case r.Level >= slog.LevelWarn && logger != "":
		_, err := fmt.Fprintf(h.w, "%s %s: %s\n", r.Level, logger, r.Message)
		return err
	}
	return nil // the engine's own information (a module kept on the main interpreter ...)
}

func (h pythonOutput) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h pythonOutput) WithGroup(string) slog.Handler      { return h }
