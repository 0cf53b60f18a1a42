package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// oneRow is a record batch of one row holding args (parsed by parseArg)
// as columns f0, f1 ... of the declared types: how a Pandas or Arrow
// function, which takes columns, is called on one row.
func oneRow(args []any, types []*bridge.DataType) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, len(types))
	row := make(map[string]any, len(types))
	for i, t := range types {
		name := fmt.Sprintf("f%d", i)
		fields[i] = arrow.Field{Name: name, Type: arrowconv.ArrowType(t), Nullable: !t.NotNull}
		row[name] = arrowJSON(args[i], t)
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, arrow.NewSchema(fields, nil),
		strings.NewReader("["+jsonText(row)+"]"))
	if err != nil {
		return nil, fmt.Errorf("the arguments do not make an Arrow row: %v", err)
	}
	return rec, nil
}

// arrowJSON is v of type t as arrow-go's JSON reader takes it.
func arrowJSON(v any, t *bridge.DataType) any {
	if values, ok := v.([]any); ok && t.Kind == bridge.RowType { // a ROW by position
		out := make(map[string]any, len(values))
		for i, f := range t.Fields {
			out[f.Name] = arrowJSON(values[i], f.Type)
		}
		return out
	}
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		switch t.Kind {
		case bridge.DateType:
			return x.Format(time.DateOnly)
		case bridge.TimestampType:
			return x.Format("2006-01-02T15:04:05.999999999")
		}
		return x.UTC().Format("2006-01-02T15:04:05.999999999")
	case time.Duration:
		return formatClock(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = arrowJSON(e, t.Elem)
		}
		return out
	case map[any]any: // a MAP: a list of key/value structs
		out := make([]any, 0, len(x))
		for k, e := range x {
			out = append(out, map[string]any{"key": arrowJSON(k, t.Key), "value": arrowJSON(e, t.Value)})
		}
		return out
	case map[string]any: // a ROW by field name
		out := make(map[string]any, len(x))
		for _, f := range t.Fields {
			out[f.Name] = arrowJSON(x[f.Name], f.Type)
		}
		return out
	}
	return v
}
