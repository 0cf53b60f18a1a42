//go:build race

package engine

// raceEnabled: the race detector is on. sync.Pool drops items at random under
// it, so allocation counts are asserted by the non-race run of make test.
const raceEnabled = true
