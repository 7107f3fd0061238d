package limiter

import (
	"encoding/binary"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const t0 = int64(1_700_000_000) * 1e9

func TestKeyedOptions(t *testing.T) {
	f := func(o KeyedOptions, want string) {
		t.Helper()
		_, err := NewKeyed(Limit{Rate: 1, Per: time.Second}, o)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Fatalf("NewKeyed(%+v): got %q; want %q", o, got, want)
		}
	}
	f(KeyedOptions{}, "")
	f(KeyedOptions{MaxKeys: 10, Shards: 4}, "")
	f(KeyedOptions{Shards: 3}, "limiter: shards must be a power of two; got 3")
	f(KeyedOptions{MaxKeys: -1}, "limiter: max_keys must be >= 0 (0 means 1000000); got -1")
}

// TestKeyedMatchesLimiter replays the same virtual-time trace through Keyed
// (many keys) and one Limiter per key: every decision must be equal.
func TestKeyedMatchesLimiter(t *testing.T) {
	l := Limit{Rate: 10, Per: time.Second, Burst: 4}
	k, _ := NewKeyed(l, KeyedOptions{MaxKeys: 64, Shards: 2})
	ref := map[string]*Limiter{}
	now := t0
	for i := range 20000 {
		now += int64(i%7) * 3e6
		key := strconv.Itoa(i * 7919 % 40)
		if ref[key] == nil {
			ref[key], _ = New(l)
		}
		got, want := k.AllowString(now, key), ref[key].Allow(now)
		if got != want {
			t.Fatalf("check %d key %s: got %+v; want %+v", i, key, got, want)
		}
	}
}

func TestKeyedOneKeyConcurrent(t *testing.T) {
	const burst, workers, per = 50, 8, 200
	k, _ := NewKeyed(Limit{Rate: 1, Per: time.Hour, Burst: burst}, KeyedOptions{})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if k.Allow(t0, []byte("one")).Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != burst {
		t.Fatalf("admitted on a fixed time: got %d; want %d (burst)", got, burst)
	}
}

// TestKeyedConcurrentRebuild runs checks on a few hot keys while many new
// keys force rebuilds and evictions of idle keys; the hot keys must never
// get more than burst on a fixed time.
func TestKeyedConcurrentRebuild(t *testing.T) {
	const burst = 20
	k, _ := NewKeyed(Limit{Rate: 1, Per: time.Hour, Burst: burst}, KeyedOptions{MaxKeys: 4096, Shards: 4})
	var admitted [4]atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte{'h', byte(w)}
			for range 2000 {
				if k.Allow(t0, key).Allowed {
					admitted[w].Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var b [8]byte
		for i := range 20000 {
			binary.LittleEndian.PutUint64(b[:], uint64(i))
			k.Allow(t0-2*int64(time.Hour), b[:]) // idle by t0: evictable, losslessly
		}
	}()
	wg.Wait()
	for w := range admitted {
		if got := admitted[w].Load(); got != burst {
			t.Fatalf("hot key %d admitted: got %d; want %d", w, got, burst)
		}
	}
}

func TestKeyedEvictsLongestIdle(t *testing.T) {
	// burst 1, one per hour: every key stays busy for an hour after a check
	k, _ := NewKeyed(Limit{Rate: 1, Per: time.Hour, Burst: 1}, KeyedOptions{MaxKeys: 8, Shards: 1})
	for i := range 8 {
		k.AllowString(t0+int64(i)*1e9, "k"+strconv.Itoa(i))
	}
	if got := k.Len(); got != 8 {
		t.Fatalf("Len: got %d; want 8", got)
	}
	now := t0 + 10e9
	k.AllowString(now, "new") // full: evicts k0, the smallest TAT
	if got := k.Len(); got != 8 {
		t.Fatalf("Len after eviction: got %d; want 8", got)
	}
	if d := k.AllowString(now, "k0"); !d.Allowed {
		t.Fatalf("k0 (evicted, longest idle): got denied; want allowed as a new key")
	}
	for i := 2; i < 8; i++ {
		if d := k.AllowString(now, "k"+strconv.Itoa(i)); d.Allowed {
			t.Fatalf("k%d (kept): got allowed; want denied", i)
		}
	}
}

func TestKeyedIdleEvictionLossless(t *testing.T) {
	l := Limit{Rate: 10, Per: time.Second, Burst: 5}
	k, _ := NewKeyed(l, KeyedOptions{MaxKeys: 1000, Shards: 1})
	for i := range 500 {
		k.AllowString(t0, "k"+strconv.Itoa(i))
	}
	now := t0 + int64(time.Second) // every "k" key is at full burst again
	k.AllowString(now-1e6, "busy")
	k.Sweep(now)
	if got := k.Len(); got != 1 {
		t.Fatalf("Len after sweep: got %d; want 1 (only the busy key)", got)
	}
	// an evicted key decides exactly as a fresh limiter at the same time
	ref, _ := New(l)
	for i := range 8 {
		got, want := k.AllowString(now, "k7"), ref.Allow(now)
		if got != want {
			t.Fatalf("check %d of evicted key: got %+v; want %+v", i, got, want)
		}
	}
}

func TestKeyedMillionKeysUnderCap(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	k, _ := NewKeyed(Limit{Rate: 100, Per: time.Second}, KeyedOptions{MaxKeys: n})
	var b [8]byte
	for i := range 2 * n {
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		k.Allow(t0, b[:])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := k.Len()
	if held > n {
		t.Fatalf("Len after %d distinct keys: got %d; want <= MaxKeys %d", 2*n, held, n)
	}
	if held < n/2 {
		t.Fatalf("Len after %d distinct keys: got %d; want >= %d", 2*n, held, n/2)
	}
	bytes := after.HeapAlloc - before.HeapAlloc
	perKey := float64(bytes) / float64(held)
	t.Logf("%d distinct keys into MaxKeys=%d: %d held, heap %.1f MiB, %.1f bytes/key", 2*n, n, held, float64(bytes)/(1<<20), perKey)
	if perKey > 64 {
		t.Fatalf("bytes per key: got %.1f; want <= 64", perKey)
	}
	runtime.KeepAlive(k)
}
