// Package floor gives the benchmark its floor: the barest call into Python,
// one cgo call that takes the GIL, calls a function of two ints and releases
// the GIL, with nothing of the engine's (no frame, no conversion beyond
// int64). It is internal so that it stays out of the engine's API; package
// engine sets Add. Internal machinery: no stability promise.
package floor

// Add calls f(a, b) (f an *engine.Function of a thread-mode engine) the
// barest way, or returns math.MinInt64 on any error.
var Add func(f any, a, b int64) int64
