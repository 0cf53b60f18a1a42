package appkit

import (
	"io"
	"sync"
	"time"
)

// Progress prints a progress line to w every interval (0: 2s) until the
// returned stop is called; stop prints the last line, whose rate is over
// the whole run, and returns once nothing writes to w any more. A nil w
// prints nothing. count returns the records so far; line writes one line
// to w given that count and the rate in records per second since the
// previous line.
func Progress(w io.Writer, interval time.Duration, count func() int64, line func(w io.Writer, n int64, rate float64)) (stop func()) {
	if w == nil {
		return func() {}
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	start := time.Now()
	print := func(prev int64, since time.Time) int64 {
		n := count()
		line(w, n, float64(n-prev)/time.Since(since).Seconds())
		return n
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		prev, since := int64(0), start
		for {
			select {
			case <-done:
				return
			case <-t.C:
				prev, since = print(prev, since), time.Now()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			print(0, start)
		})
	}
}
