package main

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The phases of a run: requests completed during warm-up are not counted.
const (
	warmingUp int32 = iota
	measuring
	finished
)

// tally is what one worker saw in the measurement window.
type tally struct {
	latencies []time.Duration
	errors    map[string]int
}

// run keeps `workers` requests in flight for warmup + duration (or until maxRequests
// have completed in the window) and returns the tallies and the window's length.
// A request counts when it completes inside the window.
func run(c *client, op operation, workers int, warmup, duration, timeout time.Duration, maxRequests int64) ([]*tally, time.Duration) {
	var phase atomic.Int32
	var counted atomic.Int64
	full := make(chan struct{})
	var fullOnce sync.Once
	tallies := make([]*tally, workers)
	var wg sync.WaitGroup
	for w := range tallies {
		t := &tally{latencies: make([]time.Duration, 0, 1024), errors: map[string]int{}}
		tallies[w] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			for phase.Load() != finished {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				start := time.Now()
				r, err := c.send(ctx, op.method, op.path, op.body)
				took := time.Since(start)
				cancel()
				if phase.Load() != measuring {
					continue
				}
				if counted.Add(1) > maxRequests {
					fullOnce.Do(func() { close(full) })
					return
				}
				if err == nil {
					err = op.check(r)
				}
				t.latencies = append(t.latencies, took)
				if err != nil {
					t.errors[oneLine(err.Error(), 100)]++
				}
			}
		}()
	}
	time.Sleep(warmup)
	phase.Store(measuring)
	begin := time.Now()
	select {
	case <-time.After(duration):
	case <-full:
	}
	phase.Store(finished)
	window := time.Since(begin)
	wg.Wait()
	return tallies, window
}

// summary is the run in numbers: latencies in milliseconds.
type summary struct {
	total                     int
	failed                    int
	mean, p50, p90, p99, peak float64
	errors                    []errorCount // most frequent first
}

type errorCount struct {
	text  string
	count int
}

func summarize(tallies []*tally) summary {
	var all []time.Duration
	counts := map[string]int{}
	var s summary
	for _, t := range tallies {
		all = append(all, t.latencies...)
		for text, n := range t.errors {
			counts[text] += n
			s.failed += n
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	s.total = len(all)
	if s.total > 0 {
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		s.mean = milliseconds(sum) / float64(s.total)
		s.p50, s.p90, s.p99 = rank(all, 50), rank(all, 90), rank(all, 99)
		s.peak = milliseconds(all[s.total-1])
	}
	for text, n := range counts {
		s.errors = append(s.errors, errorCount{text, n})
	}
	sort.Slice(s.errors, func(i, j int) bool {
		a, b := s.errors[i], s.errors[j]
		return a.count > b.count || (a.count == b.count && a.text < b.text)
	})
	return s
}

// rank is the nearest-rank percentile of sorted latencies, in milliseconds.
func rank(sorted []time.Duration, percent int) float64 {
	i := (len(sorted)*percent + 99) / 100 // ceil(n·p/100), 1-based
	if i < 1 {
		i = 1
	}
	return milliseconds(sorted[i-1])
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
