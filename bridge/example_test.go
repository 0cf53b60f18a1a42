package bridge_test

import (
	"fmt"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// One instant, four SQL types: what a function without declared input types
// receives is the constructor's choice, not time.Time's default (an aware
// datetime, as TimestampLTZ).
func ExampleDate() {
	t := time.Date(2024, 3, 1, 23, 30, 0, 0, time.FixedZone("UTC+5", 5*3600))
	fmt.Println(bridge.Date(t))                   // Python: datetime.date(2024, 3, 1)
	fmt.Println(bridge.Time(bridge.TimeOfDay(t))) // datetime.time(23, 30)
	fmt.Println(bridge.Timestamp(t))              // datetime.datetime(2024, 3, 1, 23, 30)
	fmt.Println(bridge.TimestampLTZ(t))           // datetime.datetime(2024, 3, 1, 18, 30, tzinfo=utc)
	fmt.Println(bridge.Date(t).Any().(time.Time)) // the Go value a DATE result decodes to
	// Output:
	// 2024-03-01
	// 23:30:00
	// 2024-03-01 23:30:00
	// 2024-03-01 18:30:00Z
	// 2024-03-01 00:00:00 +0000 UTC
}

// A typed Value converts to its own declared type only.
func ExampleDate_declared() {
	bigint, _ := bridge.ParseType("BIGINT")
	_, err := bridge.AppendArg(nil, bigint, bridge.Date(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)))
	fmt.Println(err)
	// Output:
	// pyudf: DATE 2024-03-01 is not a BIGINT
}

func ExampleTime() {
	fmt.Println(bridge.Time(13*time.Hour + 5*time.Minute + 500*time.Millisecond))
	_, err := bridge.AppendArg(nil, nil, bridge.Time(25*time.Hour))
	fmt.Println(err)
	// Output:
	// 13:05:00.5
	// pyudf: 25h0m0s is not a time of day for TIME(0)
}

// A named row for a function without declared types (Python reads row.owner),
// and the same value for a declared ROW, whose fields it fills by name.
func ExampleRowOf() {
	r := bridge.RowOf([]string{"owner", "id"}, "Ada", 7)
	fmt.Println(r)

	row, _ := bridge.ParseType("ROW<id BIGINT, owner STRING, team STRING>")
	_, err := bridge.AppendArg(nil, row, r)
	fmt.Println(err)

	_, err = bridge.AppendArg(nil, nil, bridge.RowOf([]string{"id", "id"}, 1, 2))
	fmt.Println(err)
	// Output:
	// Row(owner=Ada, id=7)
	// pyudf: RowOf has no field "team" of ROW<id BIGINT, owner STRING, team STRING>
	// pyudf: RowOf: field name "id" is given twice (fields 1 and 2)
}

// MapOf keeps its entries in order (a Python dict keeps insertion order) and
// takes keys a Go map cannot, such as []byte.
func ExampleMapOf() {
	m := bridge.MapOf("z", 1, "a", 2, []byte("raw"), 3)
	fmt.Println(m)

	_, err := bridge.AppendArg(nil, nil, bridge.MapOf("z", 1, "a"))
	fmt.Println(err)
	// Output:
	// map[z:1 a:2 [114 97 119]:3]
	// pyudf: MapOf: 3 arguments, not key-value pairs (the last key has no value)
}
