package benthos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// argSource says how a message becomes the UDF's arguments: its raw content
// (neither fields nor mapping), fields of its structured content, or the
// array an args_mapping yields.
type argSource struct {
	fields  [][]string // dot paths
	names   []string   // the paths as written, for errors
	mapping *bloblang.Executor
	arity   int // mapping: the arity the probe found (0: unknown)
}

func (a *argSource) describe(i int) string {
	switch {
	case a.fields != nil:
		return fmt.Sprintf("argument %d (field %q)", i+1, a.names[i])
	case a.mapping != nil:
		return fmt.Sprintf("argument %d (args_mapping[%d])", i+1, i)
	}
	return "argument 1 (the message content)"
}

// count is the number of arguments this source yields, or -1 if only the
// messages can tell (an args_mapping the probe could not run).
func (a *argSource) count() int {
	switch {
	case a.fields != nil:
		return len(a.fields)
	case a.mapping != nil:
		if a.arity == 0 {
			return -1
		}
		return a.arity
	}
	return 1
}

// inputTypes returns the argument columns' types (nil entries: taken from
// the values), after checking the argument count against the function's
// declared input types. An args_mapping is run on an empty object to count
// what it yields; a mapping that fails there is counted per message.
func (a *argSource) inputTypes(fn *engine.Function) ([]*bridge.DataType, error) {
	if a.mapping != nil {
		probe := service.NewMessage(nil)
		probe.SetStructured(map[string]any{})
		if v, err := queryValue(probe.BloblangQuery(a.mapping)); err == nil {
			list, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("pyudf: args_mapping must yield an array of the arguments, not %s", describeValue(v))
			}
			a.arity = len(list)
		}
	}
	declared := fn.InputTypes()
	n := a.count()
	if declared != nil {
		if n >= 0 && n != len(declared) {
			src := "the message content (set args or args_mapping)"
			switch {
			case a.fields != nil:
				src = fmt.Sprintf("args %v", a.names)
			case a.mapping != nil:
				src = "args_mapping"
			}
			return nil, fmt.Errorf("pyudf: function %q takes %d arguments %s, but %s yields %d: %w",
				fn.Name(), len(declared), typeNames(declared), src, n, engine.ErrArgumentCount)
		}
		a.arity = len(declared)
		return declared, nil
	}
	if n < 0 {
		return nil, nil // the first message decides
	}
	types := make([]*bridge.DataType, n)
	if a.fields == nil && a.mapping == nil {
		types[0] = bridge.MustParseType("STRING")
	}
	return types, nil
}

func typeNames(ts []*bridge.DataType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// queryValue is the structured result of a Bloblang query. (The public
// QueryValue methods run the mapping without a context for this.)
func queryValue(m *service.Message, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("the mapping deleted the root")
	}
	if !m.HasStructured() { // root = "text" makes raw content
		b, err := m.AsBytes()
		return string(b), err
	}
	return m.AsStructured()
}

// appendRow appends message i's arguments to cols, or appends nothing and
// returns why they do not fit. exec is the args_mapping's executor over the
// batch, if there is one.
func (a *argSource) appendRow(cols *columns, batch service.MessageBatch, exec *service.MessageBatchBloblangExecutor, i int) error {
	msg := batch[i]
	if a.fields == nil && a.mapping == nil {
		b, err := msg.AsBytes()
		if err != nil {
			return err
		}
		return cols.appendContent(b)
	}
	var vals []any
	if a.mapping != nil {
		v, err := queryValue(exec.Query(i))
		if err != nil {
			return fmt.Errorf("args_mapping: %w", err)
		}
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("args_mapping must yield an array of the arguments, not %s", describeValue(v))
		}
		vals = list
	} else {
		doc, err := msg.AsStructured()
		if err != nil {
			return fmt.Errorf("args need a structured (JSON) message: %w", err)
		}
		vals = make([]any, len(a.fields))
		for k, path := range a.fields {
			vals[k] = lookup(doc, path)
		}
	}
	return cols.appendValues(vals, a.describe)
}

// lookup is the value at a dot path of a structured document, or nil.
func lookup(doc any, path []string) any {
	for _, key := range path {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		doc = m[key]
	}
	return doc
}

// columns builds the record batch of a message batch's arguments. A column
// whose type is nil takes it from its first non-null value.
type columns struct {
	types    []*bridge.DataType
	builders []array.Builder
	rows     int
	fixed    bool // the column count is known
	conv     []any
}

func newColumns(types []*bridge.DataType) *columns {
	c := &columns{fixed: types != nil}
	c.setTypes(types)
	return c
}

func (c *columns) setTypes(types []*bridge.DataType) {
	c.types = append([]*bridge.DataType(nil), types...)
	c.builders = make([]array.Builder, len(types))
	for i, t := range types {
		if t != nil {
			c.builders[i] = array.NewBuilder(arrowconv.DefaultAllocator, arrowconv.ArrowType(t))
		}
	}
}

// appendContent appends a message's raw content as the one argument.
func (c *columns) appendContent(b []byte) error {
	if len(c.builders) != 1 {
		return fmt.Errorf("the function takes %d arguments, the message content is one: set args or args_mapping", len(c.builders))
	}
	switch bld := c.builders[0].(type) {
	case *array.StringBuilder:
		bld.BinaryBuilder.Append(b)
	case *array.BinaryBuilder:
		bld.Append(b)
	default:
		return c.appendValues([]any{string(b)}, func(int) string { return "argument 1 (the message content)" })
	}
	c.rows++ // appendValues counts its own rows
	return nil
}

// appendValues converts a row's values to their columns' types, then appends
// them all, or nothing if one does not fit.
func (c *columns) appendValues(vals []any, describe func(int) string) error {
	if !c.fixed {
		c.setTypes(make([]*bridge.DataType, len(vals)))
		c.fixed = true
	}
	if len(vals) != len(c.types) {
		return fmt.Errorf("%d arguments for a function of %d: %w", len(vals), len(c.types), engine.ErrArgumentCount)
	}
	conv := c.conv[:0]
	inferred := false
	for k, v := range vals {
		t := c.types[k]
		if t == nil && v != nil {
			if t = inferType(v); t == nil {
				return fmt.Errorf("%s: %s: declare the function's input types for values of this kind", describe(k), describeValue(v))
			}
			inferred = true
		}
		cv, err := convert(v, t)
		if err != nil {
			return fmt.Errorf("%s: %w", describe(k), err)
		}
		conv = append(conv, cv)
	}
	c.conv = conv
	if inferred {
		for k, v := range vals {
			if c.types[k] == nil && v != nil {
				c.types[k] = inferType(v)
				c.builders[k] = array.NewBuilder(arrowconv.DefaultAllocator, arrowconv.ArrowType(c.types[k]))
				c.builders[k].AppendNulls(c.rows)
			}
		}
	}
	for k, cv := range conv {
		b := c.builders[k]
		if b == nil { // still untyped: only nulls so far
			continue
		}
		appendConverted(b, cv)
	}
	c.rows++
	return nil
}

// record finishes the columns (an untyped column is all nulls: STRING) and
// releases the builders.
func (c *columns) record() arrow.RecordBatch {
	fields := make([]arrow.Field, len(c.types))
	arrs := make([]arrow.Array, len(c.types))
	for k, t := range c.types {
		if t == nil {
			t = bridge.MustParseType("STRING")
			c.builders[k] = array.NewBuilder(arrowconv.DefaultAllocator, arrowconv.ArrowType(t))
			c.builders[k].AppendNulls(c.rows)
		}
		arrs[k] = c.builders[k].NewArray()
		c.builders[k].Release()
		fields[k] = arrow.Field{Name: fmt.Sprintf("arg%d", k), Type: arrs[k].DataType(), Nullable: !t.NotNull}
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(c.rows))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func (c *columns) release() {
	for _, b := range c.builders {
		if b != nil {
			b.Release()
		}
	}
}

// inferType is the SQL type of an undeclared argument, from its value.
func inferType(v any) *bridge.DataType {
	switch x := v.(type) {
	case string:
		return bridge.MustParseType("STRING")
	case []byte:
		return bridge.MustParseType("BYTES")
	case bool:
		return bridge.MustParseType("BOOLEAN")
	case int, int8, int16, int32, int64, uint8, uint16, uint32:
		return bridge.MustParseType("BIGINT")
	case float32, float64:
		return bridge.MustParseType("DOUBLE")
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return bridge.MustParseType("BIGINT")
		}
		return bridge.MustParseType("DOUBLE")
	}
	return nil
}

// jsonValue is an argument of a nested or temporal type, as JSON for the
// column builder.
type jsonValue []byte

// convert checks that v fits SQL type t and returns it in the form
// appendConverted appends: nil, bool, int64, float64, string, []byte or a
// jsonValue.
func convert(v any, t *bridge.DataType) (any, error) {
	if v == nil {
		if t != nil && t.NotNull {
			return nil, fmt.Errorf("null for %s", t)
		}
		return nil, nil
	}
	switch t.Kind {
	case bridge.CharType, bridge.VarCharType:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case bridge.BinaryType, bridge.VarBinaryType:
		switch x := v.(type) {
		case string:
			return []byte(x), nil
		case []byte:
			return x, nil
		}
	case bridge.BooleanType:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	case bridge.TinyIntType, bridge.SmallIntType, bridge.IntType, bridge.BigIntType:
		n, ok := toInt(v)
		if !ok {
			break
		}
		bits := map[bridge.Kind]uint{bridge.TinyIntType: 8, bridge.SmallIntType: 16, bridge.IntType: 32, bridge.BigIntType: 64}[t.Kind]
		if bits < 64 && (n < -(1<<(bits-1)) || n >= 1<<(bits-1)) {
			return nil, fmt.Errorf("%d out of range for %s", n, t)
		}
		return n, nil
	case bridge.FloatType, bridge.DoubleType:
		if f, ok := toFloat(v); ok {
			return f, nil
		}
	default: // DECIMAL, dates and times, ARRAY, MAP, ROW: through the builder's JSON reader
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s for %s: %w", describeValue(v), t, err)
		}
		scratch := array.NewBuilder(arrowconv.DefaultAllocator, arrowconv.ArrowType(t))
		defer scratch.Release()
		if err := scratch.UnmarshalJSON(jsonList(b)); err != nil {
			return nil, fmt.Errorf("%s does not fit %s: %w", describeValue(v), t, err)
		}
		return jsonValue(b), nil
	}
	return nil, fmt.Errorf("want %s, got %s", t, describeValue(v))
}

// jsonList is the JSON array of one value, what Builder.UnmarshalJSON reads.
func jsonList(v []byte) []byte {
	return append(append([]byte{'['}, v...), ']')
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			return int64(x), true
		}
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	if n, ok := toInt(v); ok {
		return float64(n), true
	}
	return 0, false
}

// appendConverted appends a value convert accepted.
func appendConverted(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch bld := b.(type) {
	case *array.StringBuilder:
		bld.Append(v.(string))
	case *array.BinaryBuilder:
		bld.Append(v.([]byte))
	case *array.BooleanBuilder:
		bld.Append(v.(bool))
	case *array.Int8Builder:
		bld.Append(int8(v.(int64)))
	case *array.Int16Builder:
		bld.Append(int16(v.(int64)))
	case *array.Int32Builder:
		bld.Append(int32(v.(int64)))
	case *array.Int64Builder:
		bld.Append(v.(int64))
	case *array.Float32Builder:
		bld.Append(float32(v.(float64)))
	case *array.Float64Builder:
		bld.Append(v.(float64))
	default:
		if err := b.UnmarshalJSON(jsonList(v.(jsonValue))); err != nil {
			panic(fmt.Sprintf("pyudf benthos: a value convert accepted failed to append: %v", err)) // convert checked it
		}
	}
}

func describeValue(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%T (%s)", v, s)
}

// setResult puts row r of the result column into msg: a string or bytes as
// its raw content, any other value as its structured content.
func setResult(msg *service.Message, res arrow.Array, r int) {
	if a, ok := res.(*array.String); ok && a.IsValid(r) {
		msg.SetBytes([]byte(a.Value(r))) // one copy, out of the C memory
		return
	}
	switch v := resultValue(res, r).(type) {
	case string:
		msg.SetBytes([]byte(v))
	case []byte:
		msg.SetBytes(v)
	default:
		msg.SetStructured(v)
	}
}

// resultValue is row r of the result column as a Go value that owns its
// memory (the column's buffers are C memory, released after the batch):
// nil, string, []byte, bool, int64, float64, or for other types the
// structured form Benthos uses (maps, slices, json.Number).
func resultValue(res arrow.Array, r int) any {
	if res.IsNull(r) {
		return nil
	}
	switch a := res.(type) {
	case *array.String:
		return strings.Clone(a.Value(r))
	case *array.LargeString:
		return strings.Clone(a.Value(r))
	case *array.Binary:
		return bytes.Clone(a.Value(r))
	case *array.Boolean:
		return a.Value(r)
	case *array.Int64:
		return a.Value(r)
	case *array.Float64:
		return a.Value(r)
	}
	return structured(res.GetOneForMarshal(r))
}

// structured turns arrow's JSON-ready value into Benthos' structured form
// (maps, slices, json.Number).
func structured(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return string(b)
	}
	return out
}
