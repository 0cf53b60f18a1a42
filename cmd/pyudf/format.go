package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// formatValue prints a result value of type t (nil: undeclared) the way an
// argument of that type is written: NULL, numbers, true/false, a string as
// it is (top) or JSON-quoted (inside a container), dates and times as
// 2006-01-02 15:04:05.999999, bytes as 0x hex, containers as JSON.
func formatValue(v any, t *bridge.DataType, top bool) string {
	switch x := v.(type) {
	case nil:
		if top {
			return null
		}
		return "null"
	case string:
		if top {
			return x
		}
		return strconv.Quote(x)
	case []byte:
		s := "0x" + hex.EncodeToString(x)
		if top {
			return s
		}
		return strconv.Quote(s)
	case bool:
		return strconv.FormatBool(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case bridge.Dec:
		return x.String()
	case time.Time:
		return quoted(formatTime(x, t), top)
	case time.Duration:
		return quoted(formatClock(x), top)
	case bridge.Row:
		var fields []bridge.Field
		if t != nil && t.Kind == bridge.RowType && len(t.Fields) == len(x) {
			fields = t.Fields
		}
		parts := make([]string, len(x))
		for i, e := range x {
			if fields != nil {
				parts[i] = strconv.Quote(fields[i].Name) + ": " + formatValue(e, fields[i].Type, false)
			} else {
				parts[i] = formatValue(e, nil, false)
			}
		}
		if fields != nil {
			return "{" + strings.Join(parts, ", ") + "}"
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []any:
		var elem *bridge.DataType
		if t != nil && t.Kind == bridge.ArrayType {
			elem = t.Elem
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e, elem, false)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[any]any:
		var kt, vt *bridge.DataType
		if t != nil && t.Kind == bridge.MapType {
			kt, vt = t.Key, t.Value
		}
		parts := make([]string, 0, len(x))
		for k, e := range x {
			key := formatValue(k, kt, false)
			if !strings.HasPrefix(key, `"`) {
				key = strconv.Quote(key) // JSON keys are strings
			}
			parts = append(parts, key+": "+formatValue(e, vt, false))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func quoted(s string, top bool) string {
	if top {
		return s
	}
	return strconv.Quote(s)
}

func formatTime(t time.Time, typ *bridge.DataType) string {
	if typ != nil {
		switch typ.Kind {
		case bridge.DateType:
			return t.Format(time.DateOnly)
		case bridge.TimestampType:
			return t.Format("2006-01-02 15:04:05.999999")
		}
	}
	return t.Format(time.RFC3339Nano)
}

func formatClock(d time.Duration) string {
	c := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)
	return c.Format("15:04:05.999999")
}

// formatRow prints one row of a table: its fields separated by tabs.
func formatRow(row bridge.Row, t *bridge.DataType) string {
	parts := make([]string, len(row))
	for i, v := range row {
		var ft *bridge.DataType
		if t != nil && t.Kind == bridge.RowType && i < len(t.Fields) {
			ft = t.Fields[i].Type
		}
		parts[i] = formatValue(v, ft, true)
	}
	return strings.Join(parts, "\t")
}

// printHeader prints the field names of a declared ROW type.
func printHeader(w io.Writer, t *bridge.DataType) {
	if t == nil || t.Kind != bridge.RowType {
		return
	}
	names := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		names[i] = f.Name
	}
	fmt.Fprintln(w, strings.Join(names, "\t"))
}
