package bridge

import (
	"fmt"
	"strconv"
	"strings"
)

// PythonError is an exception raised by Python code: a UDF, its open or
// close, or the user module while it loads. Reach it with errors.As.
type PythonError struct {
	Function  string // the UDF's name; "" when not raised by a function
	Op        string // what the engine was doing ("call", "open", "load source udfs.py" ...)
	Row       int    // row index in a batch, or -1
	Type      string // qualified exception type: "ValueError", "json.decoder.JSONDecodeError"
	Message   string // str(exception)
	Traceback string // the formatted traceback, as Python prints it
}

func (e *PythonError) Error() string {
	var b strings.Builder
	b.WriteString("pyudf: ")
	if e.Function != "" {
		fmt.Fprintf(&b, "function %q: ", e.Function)
	}
	if e.Op != "" && e.Op != "call" {
		b.WriteString(e.Op + ": ")
	}
	if e.Row >= 0 {
		fmt.Fprintf(&b, "row %d: ", e.Row)
	}
	b.WriteString(e.Type)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// ConversionError is a value that cannot be converted: a Go argument that
// does not fit the declared input type, or a Python result that does not fit
// the declared result type.
//
// Every problem the engine finds with what a UDF returned is a
// ConversionError with a Path starting "result", whichever way the call
// went (Call, Eval, EvalRowErrors, Map, Pandas and Arrow UDFs, table
// functions, an aggregate's Value, Reduce) and in both modes: a result of
// the wrong type, a value that does not fit, a Pandas UDF's result of the
// wrong length, a missing ROW field. A *PythonError is always an exception
// the user's Python code raised.
type ConversionError struct {
	Function string // the UDF's name
	Path     string // "argument 2", "result", "result[3].name" ...
	Row      int    // the batch row whose result it is, or -1 (not a batch, or no one row)
	Reason   string // what was wrong, naming the value and the type
}

func (e *ConversionError) Error() string {
	var b strings.Builder
	b.WriteString("pyudf: ")
	if e.Function != "" {
		fmt.Fprintf(&b, "function %q: ", e.Function)
	}
	if e.Row >= 0 {
		fmt.Fprintf(&b, "row %d: ", e.Row)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func convErr(format string, args ...any) error {
	return &ConversionError{Row: -1, Reason: fmt.Sprintf(format, args...)}
}

// errAt prefixes the path of a ConversionError with one more step, as the
// error travels out of a nested value.
func errAt(err error, step string) error {
	if ce, ok := err.(*ConversionError); ok {
		return &ConversionError{Function: ce.Function, Path: step + ce.Path, Row: ce.Row, Reason: ce.Reason}
	}
	return err
}

// At returns err with its path rooted at where ("argument 1", "result") and
// attributed to function fn.
func At(err error, fn, where string) error {
	if ce, ok := err.(*ConversionError); ok {
		return &ConversionError{Function: fn, Path: where + ce.Path, Row: ce.Row, Reason: ce.Reason}
	}
	return err
}

func mismatch(x any, t *DataType) error {
	if s, ok := x.(string); ok {
		return convErr("Go string %q is not a %s", s, t)
	}
	return convErr("Go %T (%v) is not a %s", x, x, t)
}

func typeMismatch(tag byte, t *DataType) error {
	name := "value"
	if int(tag) < len(pythonNames) {
		name = pythonNames[tag]
	}
	return convErr("Python %s is not a %s", name, t)
}

// ResultErrorType is the Python exception class (pyudf._host.ResultError)
// the runtime raises about a UDF's result rather than the UDF raising it.
const ResultErrorType = "pyudf._host.ResultError"

// FromPython is the Go error for an exception reported by the interpreter
// (type, message and traceback as pyudf describes them) while running op of
// function at row (-1: none): a *ConversionError when it is the runtime's
// ResultError, the UDF's result being invalid, else a *PythonError.
func FromPython(function, op string, row int, typ, message, traceback string) error {
	if typ != ResultErrorType {
		return &PythonError{Function: function, Op: op, Row: row, Type: typ, Message: message, Traceback: traceback}
	}
	// The message is "[row N: ]result...: reason".
	if rest, ok := strings.CutPrefix(message, "row "); ok {
		if digits, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(digits); err == nil {
				row, message = n, after
			}
		}
	}
	path, reason := "result", message
	if p, r, ok := strings.Cut(message, ": "); ok && strings.HasPrefix(p, "result") && !strings.Contains(p, " ") {
		path, reason = p, r
	}
	return &ConversionError{Function: function, Path: path, Row: row, Reason: reason}
}
