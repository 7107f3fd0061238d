package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath returns the headless browser of the dashboard test: a
// failure under CI=true when it is missing, a skip otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; the dashboard test needs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; skipping the dashboard browser test (apt-get install chromium)")
	return ""
}

// pageErrors collects what a page reports as broken: console.error calls,
// uncaught exceptions, and browser log errors (a refused script, a
// Content-Security-Policy violation, a failed load).
type pageErrors struct {
	mu   sync.Mutex
	list []string
	// allow401 ignores the failed load of a /stats the page was refused
	// (the token state).
	allow401 bool
}

func (p *pageErrors) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if string(ev.Type) != "error" {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		msg = "console.error: " + strings.Join(args, " ")
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		if p.allow401 && strings.Contains(ev.Entry.Text, "401") && strings.HasSuffix(ev.Entry.URL, "/stats") {
			return
		}
		msg = "browser log (" + string(ev.Entry.Source) + "): " + ev.Entry.Text + " " + ev.Entry.URL
	default:
		return
	}
	p.mu.Lock()
	p.list = append(p.list, msg)
	p.mu.Unlock()
}

func (p *pageErrors) check(t *testing.T, tab string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) > 0 {
		t.Fatalf("%s: the page reported errors:\n%s", tab, strings.Join(p.list, "\n"))
	}
}

const dashboardToken = "dash-t0ken"

// dashboardConfig has three routes on three upstreams: a rate limit on
// products, a cache on orders.
func dashboardConfig(adminAddr string) string {
	return `admin: {listen: "` + adminAddr + `", token: "` + dashboardToken + `"}
upstreams:
  users: {balancer: least_conn, targets: [{url: "{{users-a}}"}, {url: "{{users-b}}"}]}
  orders: {targets: [{url: "{{orders}}"}]}
  products: {targets: [{url: "{{products}}"}]}
routes:
  - name: users
    match: {path: "/users/{id}"}
    upstream: users
  - name: orders
    match: {path: "/orders/{id}"}
    upstream: orders
    cache: {ttl: 1s}
  - name: products
    match: {path: "/products/{id}"}
    upstream: products
    rate_limit: {rate: 150, per: 1s, burst: 20, key: route}
`
}

// TestDashboard opens the admin dashboard of the real binary in headless
// Chromium: without a token it asks for one, with it (from the token
// field, then from the URL fragment) it shows the routes' live rates while
// load runs, and healthy targets; the page reports no error. With
// FASTGATE_SCREENSHOT=path it writes a PNG of the page there.
func TestDashboard(t *testing.T) {
	chromium := chromiumPath(t)
	usersA := startUpstream(t, "users-a", "-latency", "2ms")
	usersB := startUpstream(t, "users-b", "-latency", "3ms")
	orders := startUpstream(t, "orders", "-latency", "15ms")
	products := startUpstream(t, "products")
	adminAddr := freePort(t)
	g := startGateway(t, dashboardConfig(adminAddr), usersA, usersB, orders, products)
	waitFor(t, "admin listener", startTimeout, func() bool {
		c, err := net.DialTimeout("tcp4", adminAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromium),
			chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.WindowSize(1280, 800),
		)...)
	defer cancelAlloc()
	var first pageErrors
	first.allow401 = true
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithListener(first.listen))
	defer cancelBrowser()
	// The browser lives as long as bctx; each step has its own deadline.
	step := func(ctx context.Context, what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %s; fastgate stderr:\n%s", what, err, g.stderr.String())
		}
	}
	page := "http://" + adminAddr + "/"

	// Tab 1: no token. The page says so, and the token field unlocks it.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %s", err)
	}
	step(bctx, "open "+page, 10*time.Second, chromedp.Navigate(page))
	step(bctx, "the token state", 10*time.Second,
		chromedp.Poll[chromedp.Void](`document.getElementById("status").dataset.state === "auth" && !document.getElementById("auth").hidden`, chromedp.WithPollingTimeout(10*time.Second)))
	step(bctx, "entering the token", 10*time.Second,
		chromedp.SendKeys(chromedp.ID("token"), dashboardToken),
		chromedp.Click(chromedp.CSS("#auth button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").dataset.state === "live"`, chromedp.WithPollingTimeout(10*time.Second)))
	first.check(t, "tab without a token")

	// Tab 2: the token in the fragment, which the page then removes from
	// the address bar.
	var second pageErrors
	ctx, cancelTab := chromedp.NewContext(bctx, chromedp.WithListener(second.listen))
	defer cancelTab()
	// The tab's first Run has no deadline: the tab lives as long as its
	// context.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("open a second tab: %s", err)
	}
	step(ctx, "open the dashboard with #token", 10*time.Second,
		chromedp.Navigate(page+"#token="+dashboardToken),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").dataset.state === "live" && document.querySelector('tr[data-route="users"]') !== null`, chromedp.WithPollingTimeout(10*time.Second)))
	if hash := evalString(t, ctx, `location.hash`); hash != "" {
		t.Fatalf("location.hash after load: got %q; want the token removed", hash)
	}

	// Bounded load on the three routes while the page polls.
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	// load runs workers sending path with an id (below ids when > 0),
	// pausing between requests.
	load := func(path string, workers, ids int, pause time.Duration) {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := newClient()
				defer client.CloseIdleConnections()
				lg := &gateway{addr: g.addr, client: client}
				for i := range 50000 {
					select {
					case <-stop:
						return
					default:
					}
					id := w*100000 + i
					if ids > 0 {
						id = i % ids
					}
					p := fmt.Sprintf(path, id)
					if _, err := lg.try("GET", p, ""); err != nil {
						failed.Add(1)
					}
					sent.Add(1)
					if pause > 0 {
						time.Sleep(pause) // pacing of the load, not ordering
					}
				}
			}()
		}
	}
	load("/users/%d", 2, 0, 2*time.Millisecond)
	// /orders: a few ids, so the cache answers most.
	load("/orders/%d", 2, 40, 5*time.Millisecond)
	// /products: some answers are 500s from the stub; the rate limit
	// refuses the rest of the excess.
	load("/products/%d?stub_status=200", 1, 0, 4*time.Millisecond)
	load("/products/%d?stub_status=500", 1, 0, 50*time.Millisecond)
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	// The users row's rate turns non-zero, and its request count grows.
	rate := `parseFloat(document.querySelector('tr[data-route="users"] td[data-k="rate"]').textContent.replace(/,/g, "")) > 0`
	step(ctx, "users rate > 0", 15*time.Second, chromedp.Poll[chromedp.Void](rate, chromedp.WithPollingTimeout(15*time.Second)))
	total := `Number(document.querySelector('tr[data-route="users"] td[data-k="total"]').textContent.replace(/,/g, ""))`
	n0, err := strconv.ParseFloat(evalString(t, ctx, `String(`+total+`)`), 64)
	if err != nil {
		t.Fatalf("users total cell: %s", err)
	}
	step(ctx, "users count growing", 15*time.Second,
		chromedp.Poll[chromedp.Void](total+` > `+strconv.FormatFloat(n0, 'f', -1, 64), chromedp.WithPollingTimeout(15*time.Second)))

	// Both users targets are shown healthy.
	for _, u := range []*upstream{usersA, usersB} {
		sel := `[data-upstream="users"] tr[data-target="` + u.addr + `"] td[data-k="state"]`
		step(ctx, "target "+u.addr+" healthy", 10*time.Second,
			chromedp.Poll[chromedp.Void](`(document.querySelector('`+sel+`') || {}).textContent === "healthy"`, chromedp.WithPollingTimeout(10*time.Second)))
	}

	if path := os.Getenv("FASTGATE_SCREENSHOT"); path != "" {
		// Let the sparklines fill and the rate limit and cache show.
		step(ctx, "a populated page", 30*time.Second,
			chromedp.Poll[chromedp.Void](`(document.querySelector('tr[data-route="products"] td[data-k="limited"]') || {}).textContent !== "–" && document.querySelectorAll('tr[data-route="users"] svg polyline').length > 0 && (document.querySelector('#g-spark polyline') || {getAttribute(){return ""}}).getAttribute("points").split(" ").length >= 15`,
				chromedp.WithPollingTimeout(30*time.Second)))
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %s", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
	stopLoad()
	second.check(t, "tab with #token")
	if sent.Load() == 0 || failed.Load() != 0 {
		t.Fatalf("load: %d sent, %d failed; want some sent, none failed", sent.Load(), failed.Load())
	}
}

// evalString evaluates a JavaScript expression of string value in the tab
// of ctx.
func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ectx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %s", expr, err)
	}
	return s
}
