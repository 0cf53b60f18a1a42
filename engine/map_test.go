package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

const mapSource = `
import pandas as pd
from pyflink.table import DataTypes, Row
from pyflink.table.udf import udf

result = DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()),
                        DataTypes.FIELD("label", DataTypes.STRING())])

@udf(result_type=result)
def enrich(row):
    return Row(id=row.id * 10, label=None if row["name"] is None else row.name.upper())

@udf(result_type=result, func_type="pandas")
def enrich_pandas(df):
    return pd.DataFrame({"id": df["id"] * 10, "label": df["name"].str.upper()})

as_tuple = udf(lambda row: (row.id, "t"), result_type=result)
as_dict = udf(lambda row: {"label": "d", "id": row.id}, result_type=result)
missing_field = udf(lambda row: {"id": 1}, result_type=result)
short_frame = udf(lambda df: df.iloc[:1], result_type=result, func_type="pandas")
declared = udf(lambda row: row, input_types=['ROW<id BIGINT, name STRING>'], result_type='ROW<id BIGINT, name STRING>')
not_a_row = udf(lambda row: 1, result_type='BIGINT')
columns = udf(lambda df: pd.DataFrame({"id": [len(df.columns)] * len(df), "label": [",".join(df.columns)] * len(df)}),
              result_type=result, func_type="pandas")
`

func TestMapRowWiseAndPandasAgree(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "maps.py", mapSource)
		mem := checkedAllocator(t)
		in := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`, arrow.BinaryTypes.String, `["a", null, "c"]`)
		in = renamed(t, in, "id", "name")
		want := `[{"id":10,"label":"A"},{"id":20,"label":null},{"id":30,"label":"C"}]`
		for _, name := range []string{"enrich", "enrich_pandas"} {
			out, err := function(t, m, name).Map(context.Background(), in)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := recordJSON(t, out); got != want {
				t.Errorf("%s = %s\nwant %s", name, got, want)
			}
			if out.Schema().Field(0).Name != "id" || out.Schema().Field(1).Name != "label" {
				t.Errorf("%s schema %s", name, out.Schema())
			}
			out.Release()
		}
		for name, want := range map[string]string{
			"as_tuple": `[{"id":1,"label":"t"},{"id":2,"label":"t"},{"id":3,"label":"t"}]`,
			"as_dict":  `[{"id":1,"label":"d"},{"id":2,"label":"d"},{"id":3,"label":"d"}]`,
			"declared": `[{"id":1,"name":"a"},{"id":2,"name":null},{"id":3,"name":"c"}]`,
		} {
			if got := mapJSON(t, m, name, in); got != want {
				t.Errorf("%s = %s, want %s", name, got, want)
			}
		}
	})
}

// Thread mode sends a batch schema to Python once and then only its id: a
// Pandas map must still see each batch's own column names, through changes
// of names and back.
func TestMapSeesEachBatchsColumnNames(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "map_names.py", mapSource)
		mem := checkedAllocator(t)
		in := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`, arrow.BinaryTypes.String, `["a", "b"]`)
		for _, names := range [][]string{{"id", "name"}, {"id", "name"}, {"x", "y"}, {"id", "name"}, {"y", "x"}, {"x", "y"}} {
			want := `[{"id":2,"label":"` + strings.Join(names, ",") + `"},{"id":2,"label":"` + strings.Join(names, ",") + `"}]`
			if got := mapJSON(t, m, "columns", renamed(t, in, names...)); got != want {
				t.Errorf("columns %v: %s, want %s", names, got, want)
			}
		}
	})
}

func TestMapErrors(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "maps.py", mapSource)
		in := renamed(t, batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2]`, arrow.BinaryTypes.String, `["a", "b"]`), "id", "name")
		_, err := function(t, m, "missing_field").Map(context.Background(), in)
		wantMessage(t, err, "row 0: result: ", `field 'label' of ROW<id BIGINT, label STRING> is missing`)
		_, err = function(t, m, "short_frame").Map(context.Background(), in)
		wantMessage(t, err, "result: the Pandas map's result has 1 values for a batch of 2 rows")
		if _, err = function(t, m, "not_a_row").Map(context.Background(), in); !errors.Is(err, ErrUnsupported) {
			t.Errorf("map with a BIGINT result: %v", err)
		}
		wrong := renamed(t, batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["x"]`, arrow.BinaryTypes.String, `["y"]`), "id", "name")
		_, err = function(t, m, "declared").Map(context.Background(), wrong)
		wantMessage(t, err, `column 0 ("id") is utf8, the function's argument 1 is BIGINT`)
	})
}

// renamed gives the batch's columns new names.
func renamed(t *testing.T, rec arrow.RecordBatch, names ...string) arrow.RecordBatch {
	fields := make([]arrow.Field, len(names))
	for i, n := range names {
		fields[i] = arrow.Field{Name: n, Type: rec.Column(i).DataType(), Nullable: true}
	}
	out := array.NewRecordBatch(arrow.NewSchema(fields, nil), rec.Columns(), rec.NumRows())
	t.Cleanup(out.Release)
	return out
}

// mapJSON maps rec with function name of m and returns the result as JSON
// (Map's counterpart of eval).
func mapJSON(t *testing.T, m *Module, name string, rec arrow.RecordBatch) string {
	t.Helper()
	out, err := function(t, m, name).Map(context.Background(), rec)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer out.Release()
	return recordJSON(t, out)
}

func recordJSON(t *testing.T, rec arrow.RecordBatch) string {
	t.Helper()
	s := array.RecordToStructArray(rec)
	defer s.Release()
	return strings.ReplaceAll(jsonOf(t, s), "\n", "")
}
