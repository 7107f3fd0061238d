//go:build !race

package limiter

import (
	"testing"
	"time"
)

func TestAllowAllocs(t *testing.T) {
	f := func(name string, fn func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Fatalf("%s: got %v allocs; want 0", name, n)
		}
	}
	l := Limit{Rate: 1000, Per: time.Second, Burst: 10}
	lim, _ := New(l)
	now := t0
	f("Limiter.Allow", func() { now += 1e5; lim.Allow(now) })
	k, _ := NewKeyed(l, KeyedOptions{})
	key := []byte("consumer-42")
	k.Allow(now, key)
	f("Keyed.Allow", func() { now += 1e5; k.Allow(now, key) })
	f("Keyed.AllowString", func() { now += 1e5; k.AllowString(now, "consumer-42") })
	c, _ := NewConcurrency(4, 4, time.Millisecond)
	f("Concurrency.Acquire+Release", func() {
		if c.Acquire() {
			c.Release()
		}
	})
	kc, _ := NewKeyedConcurrency(2)
	kc.Acquire(key)
	f("KeyedConcurrency.Acquire+Release", func() {
		if kc.Acquire(key) {
			kc.Release(key)
		}
	})
}
