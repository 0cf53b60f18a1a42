package app

import (
	"context"
	"fmt"
	"maps"

	"github.com/pyudf/pyudf/engine"
)

// UDFName is the function the app calls.
const UDFName = "ip_to_province"

// LoadUDF starts an engine with cfg, with the embedded IP-range table
// written into dir and named by the job parameter cdn.ip_table (unless cfg
// sets it), loads ip_to_province.py and returns the engine and the function.
func LoadUDF(ctx context.Context, cfg engine.Config, dir string) (*engine.Engine, *engine.Function, error) {
	params := maps.Clone(cfg.JobParameters)
	if params == nil {
		params = map[string]string{}
	}
	if params["cdn.ip_table"] == "" {
		path, err := WriteIPTable(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("cdn: writing the IP table: %w", err)
		}
		params["cdn.ip_table"] = path
	}
	cfg.JobParameters = params
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	mod, err := eng.LoadSource(ctx, "ip_to_province.py", udfSource)
	if err != nil {
		eng.Close()
		return nil, nil, err
	}
	fn, err := mod.Function(ctx, UDFName)
	if err != nil {
		eng.Close()
		return nil, nil, err
	}
	return eng, fn, nil
}
