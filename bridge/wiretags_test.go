package bridge_test

import (
	"testing"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// The wire format has two halves, Go (bridge) and C (cgo/convert.h): their tags must agree.
func TestWireTagsMatchC(t *testing.T) {
	goTags := map[string]int{
		"NULL": bridge.TagNull, "FALSE": bridge.TagFalse, "TRUE": bridge.TagTrue, "INT": bridge.TagInt,
		"FLOAT": bridge.TagFloat, "STR": bridge.TagStr, "BYTES": bridge.TagBytes, "DECIMAL": bridge.TagDecimal,
		"DATE": bridge.TagDate, "TIME": bridge.TagTime, "TIMESTAMP": bridge.TagTimestamp,
		"TIMESTAMP_UTC": bridge.TagTimestampUTC, "LIST": bridge.TagList, "MAP": bridge.TagMap,
		"ROW": bridge.TagRow, "BIGINT": bridge.TagBigInt, "ROW_VALUES": bridge.TagRowValues,
	}
	cTags := cgo.WireTags()
	if len(cTags) != len(goTags) {
		t.Fatalf("C has %d tags, Go %d", len(cTags), len(goTags))
	}
	for name, c := range cTags {
		if goTags[name] != c {
			t.Errorf("tag %s: C %d, Go %d", name, c, goTags[name])
		}
	}
}
