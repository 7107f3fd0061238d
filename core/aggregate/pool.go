package aggregate

import (
	"sync"
	"sync/atomic"
)

// pool runs slots' calls on long-lived worker goroutines, started on
// demand up to max and stopped by stop, so that a fan-out starts no
// goroutine per call (fasthttp's workerpool, without idle expiry). When
// every worker is busy, dispatch waits for one: the calls of a request
// wait in line instead of growing the pool without bound.
type pool struct {
	tasks   chan *slot // unbuffered: a send succeeds only to an idle worker
	quit    chan struct{}
	workers atomic.Int32
	max     int32
	wg      sync.WaitGroup
	once    sync.Once
}

func (p *pool) init(max int32) {
	p.tasks = make(chan *slot)
	p.quit = make(chan struct{})
	p.max = max
}

// dispatch runs s's call on a worker, which reports it on s.f.done.
func (p *pool) dispatch(s *slot) {
	select {
	case p.tasks <- s: // fast path: an idle worker
		return
	default:
	}
	if p.workers.Add(1) <= p.max {
		p.wg.Add(1)
		go p.work(s)
		return
	}
	p.workers.Add(-1)
	p.tasks <- s
}

func (p *pool) work(s *slot) {
	defer p.wg.Done()
	for {
		s.call()
		s.f.done <- s.b.index
		select {
		case s = <-p.tasks:
		case <-p.quit:
			return
		}
	}
}

// stop ends the workers, once no request uses the pool.
func (p *pool) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
