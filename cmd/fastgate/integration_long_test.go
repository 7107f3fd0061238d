//go:build long

// The 5 GiB streaming run: make test-long (go test -tags long).

package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Streaming: the gateway relays large bodies with bounded memory.
const (
	streamClients = 50
	streamSize    = 100 << 20 // bytes per download
	maxRSS        = 256 << 20 // bytes
	rssInterval   = 50 * time.Millisecond
)

func TestStreamingBoundedRSS(t *testing.T) {
	u := startUpstream(t, "big")
	g := startGateway(t, `
upstreams:
  big: {targets: [{url: "{{big}}"}]}
routes:
  - match: {path: "/{rest:*}"}
    upstream: big
`, u)

	stopSampling := make(chan struct{})
	sampled := make(chan int64, 1)
	go func() { sampled <- sampleRSS(g.cmd.Process.Pid, stopSampling) }()

	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: streamClients},
	}
	defer client.CloseIdleConnections()
	start := time.Now()
	errs := make(chan error, streamClients)
	var wg sync.WaitGroup
	for i := range streamClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- download(client, g.addr, i)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	peak := <-sampled
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d downloads of %d MiB through fastgate in %s; fastgate max VmRSS %.1f MiB",
		streamClients, streamSize>>20, elapsed.Round(time.Millisecond), float64(peak)/(1<<20))
	if peak <= 0 {
		t.Fatalf("no VmRSS sample of fastgate (pid %d)", g.cmd.Process.Pid)
	}
	if peak >= maxRSS {
		t.Fatalf("fastgate max VmRSS got %d MiB; want < %d MiB", peak>>20, maxRSS>>20)
	}
}

// download fetches streamSize bytes through the gateway and checks the count.
func download(client *http.Client, addr string, i int) error {
	req, err := http.NewRequest("GET", "http://"+addr+"/big/"+strconv.Itoa(i), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Stub-Size", strconv.Itoa(streamSize))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download %d: %w", i, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("download %d: status got %d; want 200", i, resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("download %d: after %d bytes: %w", i, n, err)
	}
	if n != streamSize {
		return fmt.Errorf("download %d: body got %d bytes; want %d", i, n, streamSize)
	}
	return nil
}

// sampleRSS reads the VmRSS of pid every rssInterval until stop is closed
// and returns the largest, in bytes.
func sampleRSS(pid int, stop <-chan struct{}) int64 {
	var peak int64
	tick := time.NewTicker(rssInterval)
	defer tick.Stop()
	for {
		if rss := readRSS(pid); rss > peak {
			peak = rss
		}
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// readRSS returns VmRSS of pid in bytes, 0 when unreadable.
func readRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
