package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// Every SQL type, with nulls, through the identity function in each of the
// three batch paths: the values come back unchanged.
func TestEvalEveryTypeThreeWays(t *testing.T) {
	modes(t, func(t *testing.T) {
		cases := []struct{ ddl, json string }{
			{"BOOLEAN", `[true, null, false]`},
			{"TINYINT", `[-128, null, 127]`},
			{"SMALLINT", `[-32768, null, 32767]`},
			{"INT", `[-2147483648, null, 2147483647]`},
			// Pandas gets an integer column with nulls as float64 with NaN, as in
			// PyFlink: exact up to 2^53. Without nulls the full range survives.
			{"BIGINT", `[-9007199254740992, null, 9007199254740992]`},
			{"BIGINT", `[-9223372036854775808, 9223372036854775807]`},
			{"FLOAT", `[1.5, null, -0.25]`},
			{"DOUBLE", `[1e300, null, -2.5]`},
			{"DECIMAL(10, 2)", `["12345678.90", null, "-0.05"]`},
			{"STRING", `["héllo", null, ""]`},
			{"BYTES", `["AAH/", null, ""]`},
			{"DATE", `["2024-02-29", null, "1970-01-01"]`},
			{"TIME(6)", `["13:45:30.123456", null, "00:00:00"]`},
			{"TIMESTAMP(3)", `["2024-01-02 03:04:05.678", null, "1969-12-31 23:59:59.999"]`},
			{"TIMESTAMP_LTZ(6)", `["2024-01-02 03:04:05.678901Z", null, "2000-01-01 00:00:00Z"]`},
			{"ARRAY<BIGINT>", `[[1, null, 3], null, []]`},
			{"MAP<STRING, DOUBLE>", `[[{"key": "a", "value": 1.5}], null, []]`},
			{"ROW<a INT, b STRING>", `[{"a": 1, "b": "x"}, null, {"a": null, "b": null}]`},
			{"ARRAY<ROW<k STRING, v ARRAY<DATE>>>", `[[{"k": "x", "v": ["2024-01-01", null]}], null, []]`},
		}
		var src strings.Builder
		src.WriteString("from pyudf import udf\n")
		for i, c := range cases {
			fmt.Fprintf(&src, "rows_%d = udf(lambda x: x, input_types=[%q], result_type=%q)\n", i, c.ddl, c.ddl)
			fmt.Fprintf(&src, "pandas_%d = udf(lambda x: x, input_types=[%q], result_type=%q, func_type='pandas')\n", i, c.ddl, c.ddl)
			fmt.Fprintf(&src, "arrow_%d = udf(lambda x: x, input_types=[%q], result_type=%q, func_type='arrow')\n", i, c.ddl, c.ddl)
		}
		m := loadModule(t, Config{}, "batch_types.py", src.String())
		mem := checkedAllocator(t)
		for i, c := range cases {
			t.Run(fmt.Sprintf("%d_%s", i, c.ddl), func(t *testing.T) {
				rec := batchOf(t, mem, arrowconv.ArrowType(bridge.MustParseType(c.ddl)), c.json)
				want := jsonOf(t, rec.Column(0))
				for _, path := range []string{"rows", "pandas", "arrow"} {
					if got := eval(t, m, fmt.Sprintf("%s_%d", path, i), rec); got != want {
						t.Errorf("%s: %s\nwant %s", path, got, want)
					}
				}
			})
		}
	})
}
