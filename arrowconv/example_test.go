package arrowconv_test

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
)

// ArrowType is the Arrow column of a SQL type on the record-batch path;
// Accepts also takes equivalent encodings of an input column.
func ExampleArrowType() {
	for _, ddl := range []string{"BIGINT", "DECIMAL(10, 2)", "TIMESTAMP(3)", "ARRAY<STRING>", "ROW<id INT, name STRING>"} {
		t, err := bridge.ParseType(ddl)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(ddl, "->", arrowconv.ArrowType(t))
	}
	str, _ := bridge.ParseType("STRING")
	fmt.Println(arrowconv.Accepts(arrow.BinaryTypes.LargeString, str), arrowconv.Accepts(arrow.PrimitiveTypes.Int64, str))
	// Output:
	// BIGINT -> int64
	// DECIMAL(10, 2) -> decimal(10, 2)
	// TIMESTAMP(3) -> timestamp[ms]
	// ARRAY<STRING> -> list<item: utf8, nullable>
	// ROW<id INT, name STRING> -> struct<id: int32 nullable, name: utf8 nullable>
	// true false
}

// Batches built with an Allocator of this package (DefaultAllocator, or
// NewAllocator's, Registered) live in C memory and cross
// into Python without a copy; others are copied once.
func ExampleAllocator() {
	b := array.NewInt64Builder(arrowconv.DefaultAllocator)
	defer b.Release()
	b.AppendValues([]int64{1, 2, 3}, nil)
	col := b.NewArray()
	defer col.Release()
	fmt.Println(col)
	// Output:
	// [1 2 3]
}
