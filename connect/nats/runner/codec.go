package runner

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pyudf/pyudf/bridge"
)

// DecodeError is a payload that does not decode into the function's
// arguments. Its message goes to the dead letter's Pyudf-Error header.
type DecodeError struct {
	Path   string // "argument 2", "argument 1[3].name", or "" for the payload as a whole
	Reason string // what was wrong
	Err    error  // the underlying error, if any
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return "pyudf nats runner: payload: " + e.Reason
	}
	return "pyudf nats runner: payload: " + e.Path + ": " + e.Reason
}

func (e *DecodeError) Unwrap() error { return e.Err }

// DefaultDecoder is the Decode of a function with the given input types:
//   - no declared types, or one STRING (CHAR, VARCHAR) argument: the payload
//     is the one argument, as a string (it must be UTF-8);
//   - one BYTES (BINARY, VARBINARY) argument: the payload as it is;
//   - otherwise the payload is JSON: the argument itself for a function of
//     one argument, an array of the arguments for several. Numbers convert
//     to the declared type (an integer type takes integers only), DECIMAL
//     takes numbers and strings, BYTES base64 strings, DATE "2006-01-02",
//     TIME "15:04:05.999999", TIMESTAMP and TIMESTAMP_LTZ RFC 3339 strings
//     (TIMESTAMP without a zone too), ARRAY arrays, MAP and ROW objects (ROW
//     also arrays), and null is NULL.
func DefaultDecoder(inputs []*bridge.DataType) func(data []byte, header nats.Header) ([]any, error) {
	switch {
	case len(inputs) == 0 || (len(inputs) == 1 && isString(inputs[0])):
		return func(data []byte, _ nats.Header) ([]any, error) { return []any{string(data)}, nil }
	case len(inputs) == 1 && isBytes(inputs[0]):
		return func(data []byte, _ nats.Header) ([]any, error) { return []any{data}, nil }
	}
	return func(data []byte, _ nats.Header) ([]any, error) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, &DecodeError{Reason: "not JSON: " + err.Error(), Err: err}
		}
		if dec.More() {
			return nil, &DecodeError{Reason: "more than one JSON value"}
		}
		if len(inputs) == 1 {
			a, err := fromJSON(v, inputs[0], "argument 1")
			if err != nil {
				return nil, err
			}
			return []any{a}, nil
		}
		list, ok := v.([]any)
		if !ok || len(list) != len(inputs) {
			return nil, &DecodeError{Reason: fmt.Sprintf("the function takes %d arguments: want a JSON array of %d values, got %s",
				len(inputs), len(inputs), jsonKind(v))}
		}
		args := make([]any, len(list))
		for i, x := range list {
			a, err := fromJSON(x, inputs[i], "argument "+strconv.Itoa(i+1))
			if err != nil {
				return nil, err
			}
			args[i] = a
		}
		return args, nil
	}
}

func isString(t *bridge.DataType) bool {
	return t.Kind == bridge.CharType || t.Kind == bridge.VarCharType
}

func isBytes(t *bridge.DataType) bool {
	return t.Kind == bridge.BinaryType || t.Kind == bridge.VarBinaryType
}

// jsonKind names a decoded JSON value's kind for errors.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a JSON boolean"
	case json.Number:
		return "the JSON number " + v.String()
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	case []any:
		return fmt.Sprintf("a JSON array of %d values", len(v))
	case map[string]any:
		return "a JSON object"
	}
	return fmt.Sprintf("%T", v)
}

// fromJSON converts a decoded JSON value to the Go value the bridge takes
// for type t.
func fromJSON(v any, t *bridge.DataType, path string) (any, error) {
	if v == nil {
		return nil, nil // the bridge refuses NULL for a NOT NULL type, naming it
	}
	bad := func() error {
		return &DecodeError{Path: path, Reason: fmt.Sprintf("%s is not a %s", jsonKind(v), t)}
	}
	switch t.Kind {
	case bridge.BooleanType:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case bridge.TinyIntType, bridge.SmallIntType, bridge.IntType, bridge.BigIntType:
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
				return i, nil // the bridge checks the range of the smaller types
			}
		}
	case bridge.FloatType, bridge.DoubleType:
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return f, nil
			}
		}
	case bridge.DecimalType:
		switch x := v.(type) {
		case json.Number:
			if r, ok := new(big.Rat).SetString(x.String()); ok {
				return r, nil
			}
		case string:
			return x, nil
		}
	case bridge.CharType, bridge.VarCharType:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case bridge.BinaryType, bridge.VarBinaryType:
		if s, ok := v.(string); ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, &DecodeError{Path: path, Reason: "not base64: " + err.Error(), Err: err}
			}
			return b, nil
		}
	case bridge.DateType:
		if s, ok := v.(string); ok {
			if d, err := time.Parse(time.DateOnly, s); err == nil {
				return d, nil
			}
		}
	case bridge.TimeType:
		if s, ok := v.(string); ok {
			if c, err := time.Parse("15:04:05.999999999", s); err == nil {
				return bridge.TimeOfDay(c), nil
			}
		}
	case bridge.TimestampType, bridge.TimestampLTZType:
		if s, ok := v.(string); ok {
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
				if ts, err := time.Parse(layout, s); err == nil {
					return ts, nil
				}
			}
		}
	case bridge.ArrayType:
		if list, ok := v.([]any); ok {
			out := make([]any, len(list))
			for i, x := range list {
				e, err := fromJSON(x, t.Elem, fmt.Sprintf("%s[%d]", path, i))
				if err != nil {
					return nil, err
				}
				out[i] = e
			}
			return out, nil
		}
	case bridge.MapType:
		if obj, ok := v.(map[string]any); ok {
			out := make(map[any]any, len(obj))
			for k, x := range obj {
				key, err := mapKey(k, t.Key, path)
				if err != nil {
					return nil, err
				}
				if out[key], err = fromJSON(x, t.Value, fmt.Sprintf("%s[%q]", path, k)); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
	case bridge.RowType:
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for _, f := range t.Fields {
				val, ok := x[f.Name]
				if !ok {
					continue // the bridge names a missing field
				}
				c, err := fromJSON(val, f.Type, path+"."+f.Name)
				if err != nil {
					return nil, err
				}
				out[f.Name] = c
			}
			return out, nil
		case []any:
			if len(x) != len(t.Fields) {
				return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("%s for %s (%d fields)", jsonKind(v), t, len(t.Fields))}
			}
			out := make([]any, len(x))
			for i, val := range x {
				c, err := fromJSON(val, t.Fields[i].Type, path+"."+t.Fields[i].Name)
				if err != nil {
					return nil, err
				}
				out[i] = c
			}
			return out, nil
		}
	}
	return nil, bad()
}

// mapKey converts a JSON object's key to a MAP's key type.
func mapKey(k string, t *bridge.DataType, path string) (any, error) {
	if isString(t) {
		return k, nil
	}
	var v any = k
	switch t.Kind {
	case bridge.TinyIntType, bridge.SmallIntType, bridge.IntType, bridge.BigIntType,
		bridge.FloatType, bridge.DoubleType, bridge.DecimalType:
		v = json.Number(k)
	case bridge.BooleanType:
		if b, err := strconv.ParseBool(k); err == nil {
			v = b
		}
	}
	return fromJSON(v, t, path+" key")
}

// DefaultEncode is the Encode used when Config.Encode is nil: a string
// result is published as its UTF-8 bytes, a []byte as it is, and anything
// else as JSON (DECIMAL as a string, MAP as an object with its keys
// formatted, ROW as an array, DATE and TIMESTAMP in RFC 3339, TIME as
// "15:04:05.999999"). A NULL result never reaches it: it is published as an
// empty payload with the header Pyudf-Null: true.
func DefaultEncode(result any) ([]byte, error) {
	switch r := result.(type) {
	case string:
		return []byte(r), nil
	case []byte:
		return r, nil
	}
	return json.Marshal(jsonable(result))
}

// jsonable is v with the bridge's result types that encoding/json does not
// take (map[any]any) or spells badly (Dec, time.Duration) replaced.
func jsonable(v any) any {
	switch x := v.(type) {
	case bridge.Dec:
		return x.String()
	case time.Duration:
		return (time.Time{}).Add(x).Format("15:04:05.999999")
	case bridge.Row:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(jsonable(k))] = jsonable(e)
		}
		return out
	}
	return v
}
