package bridge

import (
	"fmt"
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
type ConversionError struct {
	Function string // the UDF's name
	Path     string // "argument 2", "result", "result[3].name" ...
	Reason   string // what was wrong, naming the value and the type
}

func (e *ConversionError) Error() string {
	var b strings.Builder
	b.WriteString("pyudf: ")
	if e.Function != "" {
		fmt.Fprintf(&b, "function %q: ", e.Function)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func convErr(format string, args ...any) error {
	return &ConversionError{Reason: fmt.Sprintf(format, args...)}
}

// errAt prefixes the path of a ConversionError with one more step, as the
// error travels out of a nested value.
func errAt(err error, step string) error {
	if ce, ok := err.(*ConversionError); ok {
		return &ConversionError{Function: ce.Function, Path: step + ce.Path, Reason: ce.Reason}
	}
	return err
}

// At returns err with its path rooted at where ("argument 1", "result") and
// attributed to function fn.
func At(err error, fn, where string) error {
	if ce, ok := err.(*ConversionError); ok {
		return &ConversionError{Function: fn, Path: where + ce.Path, Reason: ce.Reason}
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
