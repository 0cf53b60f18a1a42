package app

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pyudf/pyudf/engine"
)

func TestTrainQuick(t *testing.T) {
	ctx := context.Background()
	cfg := engine.Config{CacheDir: testCache(t)}
	dir := t.TempDir()
	s, err := Train(ctx, cfg, filepath.Join(dir, "m.joblib"), "v1", "logistic")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(s)
	m, err := LoadModel(ctx, cfg, filepath.Join(dir, "m.joblib"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.Function.Call(ctx, "r1", "u1", 5.1, 3.5, 1.4, 0.2)
	t.Log(v, err, m.Version, m.Kind)
}
