package cgo

import (
	"testing"
	"unsafe"
)

// TestFramesOwnTheirCacheLines: each frame's C struct starts a cache line
// (and is padded to whole lines), so two threads calling on frames of their
// own never write to one line (before, the gate's and the pool's frames,
// allocated one after another, shared the line where one ended and the
// next began).
func TestFramesOwnTheirCacheLines(t *testing.T) {
	for i := range 16 {
		f := NewFrame()
		if addr := uintptr(unsafe.Pointer(f.c)); addr%64 != 0 {
			t.Errorf("frame %d's C struct is at %#x, not on a 64-byte line boundary", i, addr)
		}
	}
}
