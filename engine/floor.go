package engine

import "github.com/pyudf/pyudf/cgo"

// BareAdd calls f(a, b) the barest way possible: one cgo call that takes the
// GIL, calls the Python function on two ints and releases the GIL, with no
// frame, no wire format and no checks. It exists for benchmarks, as the floor
// that Call is measured against; it returns math.MinInt64 on any error.
func BareAdd(f *Function, a, b int64) int64 { return cgo.BareAdd(f.obj, a, b) }
