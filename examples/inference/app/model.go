package app

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/pyudf/pyudf/engine"
)

var (
	//go:embed inference_udf.py
	udfSource string
	//go:embed train.py
	trainSource string
	//go:embed requirements.txt
	requirements []byte
)

// Function names in inference_udf.py, and the job parameter naming the model file.
const (
	RowUDF       = "predict"       // scalar UDF, one row per call
	BatchUDF     = "predict_batch" // Pandas UDF, one call per batch
	ModelParam   = "inference.model"
	modelInfoUDF = "model_info"
)

// DefaultCacheDir is where the engine installs requirements when
// Config.CacheDir is empty: $PYUDF_CACHE_DIR, else os.UserCacheDir()/pyudf.
func DefaultCacheDir() string {
	if d := os.Getenv("PYUDF_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "pyudf")
	}
	return filepath.Join(os.TempDir(), "pyudf-cache")
}

// EngineConfig is base with the example's requirements (scikit-learn,
// joblib) added through Config.Requirements: the file is written into the
// cache directory (the install's hash covers its content, not its path), so
// that a binary run anywhere finds it. The first engine runs pip; later ones
// reuse the install.
func EngineConfig(base engine.Config) (engine.Config, error) {
	if base.CacheDir == "" {
		base.CacheDir = DefaultCacheDir()
	}
	dir := filepath.Join(base.CacheDir, "inference")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return base, fmt.Errorf("inference: cache directory: %w", err)
	}
	req := filepath.Join(dir, "requirements.txt")
	if old, err := os.ReadFile(req); err != nil || string(old) != string(requirements) {
		if err := os.WriteFile(req, requirements, 0o644); err != nil {
			return base, fmt.Errorf("inference: writing %s: %w", req, err)
		}
	}
	base.Requirements = req
	base.JobParameters = maps.Clone(base.JobParameters)
	if base.JobParameters == nil {
		base.JobParameters = map[string]string{}
	}
	return base, nil
}

// Model is one model version being served: an engine whose job parameter
// inference.model names the file, and the opened UDF (its open() loaded
// the file).
type Model struct {
	Path, Version, Kind string
	Engine              *engine.Engine
	Function            *engine.Function
}

// Close closes the model's engine.
func (m *Model) Close() error { return m.Engine.Close() }

// LoadModel starts an engine with cfg (see EngineConfig) serving the model
// file at path, and opens the row UDF (predict) or, with batch, the Pandas
// UDF (predict_batch). A file that cannot be loaded fails here, with the
// UDF's open() error naming the file (a *bridge.PythonError of type
// ModelLoadError).
func LoadModel(ctx context.Context, cfg engine.Config, path string, batch bool) (*Model, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cfg, err = EngineConfig(cfg)
	if err != nil {
		return nil, err
	}
	cfg.JobParameters[ModelParam] = abs
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("inference: starting the engine: %w", err)
	}
	m, err := openModel(ctx, eng, abs, batch)
	if err != nil {
		eng.Close()
		return nil, err
	}
	return m, nil
}

func openModel(ctx context.Context, eng *engine.Engine, path string, batch bool) (*Model, error) {
	mod, err := eng.LoadSource(ctx, "inference_udf.py", udfSource)
	if err != nil {
		return nil, fmt.Errorf("inference: loading inference_udf.py: %w", err)
	}
	name := RowUDF
	if batch {
		name = BatchUDF
	}
	fn, err := mod.Function(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("inference: model %s: %w", path, err)
	}
	info, err := mod.Function(ctx, modelInfoUDF)
	if err != nil {
		return nil, fmt.Errorf("inference: model %s: %w", path, err)
	}
	defer info.Close()
	v, err := info.Call(ctx)
	if err != nil {
		return nil, fmt.Errorf("inference: model %s: %w", path, err)
	}
	var meta struct{ Version, Kind string }
	s, _ := v.(string)
	if err := json.Unmarshal([]byte(s), &meta); err != nil {
		return nil, fmt.Errorf("inference: model %s: model_info returned %q: %w", path, s, err)
	}
	return &Model{Path: path, Version: meta.Version, Kind: meta.Kind, Engine: eng, Function: fn}, nil
}

// Train fits a model of kind ("logistic" or "forest") with train.py,
// through an engine started with cfg (so with the packages the engine
// installed), and saves it with its version at path.
func Train(ctx context.Context, cfg engine.Config, path, version, kind string) (string, error) {
	cfg, err := EngineConfig(cfg)
	if err != nil {
		return "", err
	}
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("inference: starting the engine: %w", err)
	}
	defer eng.Close()
	return trainWith(ctx, eng, path, version, kind)
}

func trainWith(ctx context.Context, eng *engine.Engine, path, version, kind string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	mod, err := eng.LoadSource(ctx, "train.py", trainSource)
	if err != nil {
		return "", fmt.Errorf("inference: loading train.py: %w", err)
	}
	fn, err := mod.Function(ctx, "train_model")
	if err != nil {
		return "", err
	}
	defer fn.Close()
	v, err := fn.Call(ctx, abs, version, kind)
	if err != nil {
		return "", fmt.Errorf("inference: training %s: %w", abs, err)
	}
	s, ok := v.(string)
	if !ok {
		return "", errors.New("inference: train_model returned no summary")
	}
	return s, nil
}

// TrainSource is train.py, for writing it beside a model.
func TrainSource() string { return trainSource }
