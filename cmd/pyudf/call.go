package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// call runs function name on one row of command-line arguments and prints
// its result: a scalar function's value, a table function's rows, an
// aggregate function's value after accumulating the one row.
func (s *session) call(ctx context.Context, name string, raw []string, stdout io.Writer) error {
	info, err := s.describe(ctx, name)
	if err != nil {
		return err
	}
	if info.InputTypes != nil && len(raw) != len(info.InputTypes) {
		return usageErr("function %q takes %s (%s), got %d", name, plural(len(info.InputTypes), "argument"),
			typeNames(info.InputTypes), len(raw))
	}
	args := make([]any, len(raw))
	for i, r := range raw {
		var t *bridge.DataType
		if info.InputTypes != nil {
			t = info.InputTypes[i]
		}
		if args[i], err = parseArg(r, t); err != nil {
			return usageErr("function %q: argument %d: %v", name, i+1, err)
		}
	}
	ctx, cancel := s.running(ctx)
	defer cancel()
	switch {
	case info.Kind == "scalar" && info.FuncType == "general":
		f, err := s.mod.Function(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		v, err := f.Call(ctx, args...)
		if err != nil {
			return callErr(err)
		}
		fmt.Fprintln(stdout, formatValue(v, f.ResultType(), true))
	case info.Kind == "table":
		f, err := s.mod.Function(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		printHeader(stdout, f.ResultType())
		for row, err := range f.Rows(ctx, args...) {
			if err != nil {
				return callErr(err)
			}
			fmt.Fprintln(stdout, formatRow(row, f.ResultType()))
		}
	case info.Kind == "aggregate" && info.FuncType == "general", info.Kind == "table aggregate":
		a, err := s.mod.Aggregate(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		if err := a.Accumulate(ctx, int64(0), args...); err != nil {
			return callErr(err)
		}
		if a.IsTable() {
			rows, err := a.Rows(ctx, int64(0))
			if err != nil {
				return callErr(err)
			}
			printHeader(stdout, a.ResultType())
			for _, row := range rows {
				fmt.Fprintln(stdout, formatRow(row, a.ResultType()))
			}
			return nil
		}
		v, err := a.Value(ctx, int64(0))
		if err != nil {
			return callErr(err)
		}
		fmt.Fprintln(stdout, formatValue(v, a.ResultType(), true))
	case info.Kind == "scalar" && info.InputTypes != nil: // Pandas and Arrow functions take columns
		f, err := s.mod.Function(ctx, name)
		if err != nil {
			return openErr(name, err)
		}
		rec, err := oneRow(args, info.InputTypes)
		if err != nil {
			return usageErr("function %q: %v", name, err)
		}
		defer rec.Release()
		res, err := f.Eval(ctx, rec)
		if err != nil {
			return callErr(err)
		}
		defer res.Release()
		fmt.Fprintln(stdout, cell(res, 0))
	default:
		return usageErr("function %q is %s without declared input types: it runs over a batch: pyudf eval %s %s data.csv",
			name, describe(info), s.file, name)
	}
	return nil
}

// describe names a function's kind in a sentence.
func describe(f engine.FunctionInfo) string {
	switch kindName(f) {
	case "pandas":
		return "a Pandas scalar function"
	case "arrow":
		return "an Arrow scalar function"
	case "pandas-aggregate":
		return "a Pandas aggregate function"
	case "aggregate":
		return "an aggregate function"
	case "table-aggregate":
		return "a table aggregate function"
	case "table":
		return "a table function"
	}
	return "a scalar function"
}

func typeNames(ts []*bridge.DataType) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

// plural is "1 argument", "2 arguments".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
