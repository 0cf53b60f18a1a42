package pyudfbeam

import (
	"fmt"
	"reflect"
	"time"
)

// argsOf is the UDF's arguments for one element: the exported fields of a
// struct, in order, or else the element itself as the one argument.
func argsOf(elem any) []any {
	v := reflect.ValueOf(elem)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || v.Type() == reflect.TypeOf(time.Time{}) {
		return []any{elem}
	}
	t := v.Type()
	args := make([]any, 0, t.NumField())
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			args = append(args, v.Field(i).Interface())
		}
	}
	return args
}

// conform converts a UDF's result (a Go value as engine.Function.Call
// returns it) to the output PCollection's Go type t. Only conversions that
// keep the value are made: between integer kinds when it fits, between float
// kinds, to a named type of the same kind; NULL only to a type that has nil.
func conform(v any, t reflect.Type) (any, error) {
	if v == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			return reflect.Zero(t).Interface(), nil
		}
		return nil, fmt.Errorf("result is NULL (None), which the output type %v cannot hold", t)
	}
	rv := reflect.ValueOf(v)
	if rv.Type() == t {
		return v, nil
	}
	if t.Kind() == reflect.Interface && rv.Type().Implements(t) {
		return v, nil
	}
	ok := false
	switch {
	case isInt(rv.Kind()) && isInt(t.Kind()):
		c := rv.Convert(t)
		ok = c.Convert(rv.Type()).Equal(rv) && negative(c) == negative(rv)
	case isFloat(rv.Kind()) && isFloat(t.Kind()):
		ok = t.Kind() == reflect.Float64 || rv.Convert(t).Convert(rv.Type()).Equal(rv)
	case rv.Kind() == t.Kind() && rv.Type().ConvertibleTo(t): // string, []byte, bool to named types
		ok = true
	}
	if !ok {
		return nil, fmt.Errorf("result %v (Go %T) does not fit the output type %v", v, v, t)
	}
	return rv.Convert(t).Interface(), nil
}

func negative(v reflect.Value) bool { return v.CanInt() && v.Int() < 0 }

func isInt(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uintptr
}

func isFloat(k reflect.Kind) bool { return k == reflect.Float32 || k == reflect.Float64 }
