package engine

import (
	"context"
	"fmt"

	"github.com/pyudf/pyudf/bridge"
)

// FunctionInfo describes one function of a module as the engine sees it:
// what Module.Function or Module.Aggregate would open, with the types they
// would declare.
type FunctionInfo struct {
	Name string
	// Kind is "scalar", "table", "aggregate" or "table aggregate".
	Kind string
	// FuncType is "general", "pandas" (pd.Series in and out) or "arrow"
	// (pyarrow Arrays).
	FuncType string
	// Async tells a scalar function that computes its result with a
	// coroutine (an AsyncScalarFunction, or udf over an async def).
	Async bool
	// InputTypes and ResultType are the declared types, nil when undeclared
	// (as Function.InputTypes and Function.ResultType).
	InputTypes []*bridge.DataType
	ResultType *bridge.DataType
	// Err says why the function cannot be opened (its signature cannot be
	// read, a declared type does not parse); the other fields but Name are
	// then empty.
	Err error
}

// Functions lists the module's functions in definition order, without
// opening any (no open() runs; a function class is instantiated, as opening
// it would): the udf, udaf, udtf and udtaf wrappers and function instances
// among its attributes, and the public function classes, plain functions,
// partials and callable objects defined in the module itself, not imported.
// Module.Function still opens any other callable attribute by name (as a
// general scalar function).
func (m *Module) Functions(ctx context.Context) ([]FunctionInfo, error) {
	e := m.engine
	if e.closed.Load() {
		return nil, ErrClosed
	}
	var reply struct {
		Functions []struct {
			Name       string   `json:"name"`
			Kind       string   `json:"kind"`
			FuncType   string   `json:"func_type"`
			Async      bool     `json:"async"`
			InputTypes []string `json:"input_types"`
			ResultType *string  `json:"result_type"`
			Error      string   `json:"error"`
		} `json:"functions"`
	}
	req := map[string]any{"op": "functions", "engine": e.id, "module": m.id}
	if err := e.control(ctx, "list functions", req, &reply); err != nil {
		return nil, err
	}
	out := make([]FunctionInfo, 0, len(reply.Functions))
	for _, f := range reply.Functions {
		info := FunctionInfo{Name: f.Name}
		if f.Error != "" {
			info.Err = fmt.Errorf("pyudf: function %q: %s", f.Name, f.Error)
		} else if in, res, err := parseSignature(f.Name, f.InputTypes, f.ResultType); err != nil {
			info.Err = err
		} else {
			info.Kind, info.FuncType, info.Async, info.InputTypes, info.ResultType = f.Kind, f.FuncType, f.Async, in, res
		}
		out = append(out, info)
	}
	return out, nil
}
