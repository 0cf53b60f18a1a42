package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// null is how a command-line argument (or a JSON value) says NULL.
const null = "NULL"

// parseArg parses one command-line argument as type t, or, when the
// function declares no input types (t nil), as what it looks like: an
// integer, a float, true/false, NULL, a JSON array or object, else a string.
func parseArg(s string, t *bridge.DataType) (any, error) {
	if s == null {
		return nil, nil
	}
	if t == nil {
		return guess(s), nil
	}
	switch t.Kind {
	case bridge.ArrayType, bridge.MapType, bridge.RowType:
		v, err := decodeJSON(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not JSON for a %s: %v", s, t, err)
		}
		return fromJSON(v, t)
	}
	return parseScalar(s, t)
}

func guess(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{") {
		if v, err := decodeJSON(s); err == nil {
			return plainJSON(v)
		}
	}
	return s
}

func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("text after the value")
	}
	return v, nil
}

// plainJSON is a decoded JSON value with its numbers as int64 or float64.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = plainJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = plainJSON(x[k])
		}
	}
	return v
}

// parseScalar parses s as a value of a type that is not a container.
func parseScalar(s string, t *bridge.DataType) (any, error) {
	bad := func(what string) error { return fmt.Errorf("%q is not %s (%s)", s, what, t) }
	switch t.Kind {
	case bridge.BooleanType:
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, bad("true or false")
	case bridge.TinyIntType, bridge.SmallIntType, bridge.IntType, bridge.BigIntType:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad("an integer")
		}
		return i, nil // the engine checks the range of the smaller types
	case bridge.FloatType, bridge.DoubleType:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, bad("a number")
		}
		return f, nil
	case bridge.DecimalType:
		if _, err := bridge.ParseDec(s); err != nil {
			return nil, bad("a decimal number")
		}
		return s, nil // the engine fits it to the precision and scale
	case bridge.CharType, bridge.VarCharType:
		return s, nil
	case bridge.BinaryType, bridge.VarBinaryType:
		return []byte(s), nil
	case bridge.DateType:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, bad("a date (2006-01-02)")
		}
		return d, nil
	case bridge.TimeType:
		c, err := time.Parse("15:04:05.999999999", s)
		if err != nil {
			return nil, bad("a time of day (15:04:05.999999)")
		}
		return bridge.TimeOfDay(c), nil
	case bridge.TimestampType, bridge.TimestampLTZType:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.DateOnly} {
			if ts, err := time.Parse(layout, s); err == nil {
				return ts, nil
			}
		}
		return nil, bad("a timestamp (2006-01-02 15:04:05.999999, or RFC 3339)")
	}
	return nil, fmt.Errorf("arguments of type %s are not supported on the command line", t)
}

// fromJSON converts a decoded JSON value to the Go value of type t.
func fromJSON(v any, t *bridge.DataType) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t.Kind {
	case bridge.ArrayType:
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s is not a JSON array (%s)", jsonText(v), t)
		}
		out := make([]any, len(list))
		for i, e := range list {
			var err error
			if out[i], err = fromJSON(e, t.Elem); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return out, nil
	case bridge.MapType:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not a JSON object (%s)", jsonText(v), t)
		}
		out := make(map[any]any, len(obj))
		for k, e := range obj {
			key, err := parseScalar(k, t.Key)
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			if out[key], err = fromJSON(e, t.Value); err != nil {
				return nil, fmt.Errorf("[%q]: %w", k, err)
			}
		}
		return out, nil
	case bridge.RowType:
		switch x := v.(type) {
		case []any:
			if len(x) != len(t.Fields) {
				return nil, fmt.Errorf("%s has %d values, %s has %d fields", jsonText(v), len(x), t, len(t.Fields))
			}
			out := make([]any, len(x))
			for i, e := range x {
				var err error
				if out[i], err = fromJSON(e, t.Fields[i].Type); err != nil {
					return nil, fmt.Errorf("%s: %w", t.Fields[i].Name, err)
				}
			}
			return out, nil
		case map[string]any:
			out := make(map[string]any, len(x))
			for _, f := range t.Fields {
				e, ok := x[f.Name]
				if !ok {
					return nil, fmt.Errorf("%s has no field %q (%s)", jsonText(v), f.Name, t)
				}
				var err error
				if out[f.Name], err = fromJSON(e, f.Type); err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name, err)
				}
			}
			if len(x) != len(t.Fields) {
				for k := range x {
					if _, ok := out[k]; !ok {
						return nil, fmt.Errorf("%s: %s has no field %q", jsonText(v), t, k)
					}
				}
			}
			return out, nil
		}
		return nil, fmt.Errorf("%s is not a JSON object or array (%s)", jsonText(v), t)
	}
	switch x := v.(type) {
	case string:
		return parseScalar(x, t)
	case json.Number:
		return parseScalar(x.String(), t)
	case bool:
		return parseScalar(strconv.FormatBool(x), t)
	}
	return nil, fmt.Errorf("%s is not a %s", jsonText(v), t)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
