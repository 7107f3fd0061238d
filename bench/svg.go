package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
)

// Colours of the targets in the chart.
var targetColors = map[string]string{
	targetDirect:    "#9e9e9e",
	targetFastgate:  "#1f77b4",
	targetReuseport: "#aec7e8", // fastgate's blue, lighter
	targetNginx:     "#2ca02c",
	targetHAProxy:   "#ff7f0e",
	// The floor rows (floor.go): greys, like direct, as they are not
	// products.
	targetFloorGoroutine: "#c7c7c7",
	targetFloorLoop:      "#e0e0e0",
}

// Chart geometry, in SVG user units.
const (
	chartWidth  = 960.0
	panelHeight = 260.0
	marginLeft  = 70.0
	marginRight = 20.0
	marginTop   = 60.0
	panelGap    = 70.0
)

// svg draws two panels of grouped bars, CPU µs per request and requests/s,
// one group per workload and one bar per target, with min–max whiskers.
func (r *results) svg() []byte {
	var b bytes.Buffer
	height := marginTop + 2*panelHeight + panelGap + 60
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("fastgate bench %s %s — %d conns, median of %d × %gs (whiskers: min–max)",
		r.Date, r.Commit, r.Settings.Conns, r.Settings.Repeat, r.Settings.RunTimeS)
	text(&b, chartWidth/2, 22, "middle", 15, title)
	r.legend(&b)
	r.panel(&b, marginTop, "CPU µs per request (lower is better)", func(rw *row) stat { return rw.CPUPerReq }, 1)
	r.panel(&b, marginTop+panelHeight+panelGap, "requests per second (higher is better)", func(rw *row) stat { return rw.RPS }, 0)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// legend draws the colours of the run's targets.
func (r *results) legend(b *bytes.Buffer) {
	x := marginLeft
	for _, t := range targetsFor(r.Settings.Cores) {
		fmt.Fprintf(b, `<rect x="%.1f" y="34" width="12" height="12" fill="%s"/>`+"\n", x, targetColors[t])
		text(b, x+16, 44, "start", 12, t)
		x += max(100, 30+7*float64(len(t))) // about 7 units a character at size 12
	}
}

// panel draws one metric's grouped bars with its top at y.
func (r *results) panel(b *bytes.Buffer, y float64, title string, pick func(*row) stat, prec int) {
	text(b, marginLeft, y-8, "start", 13, title)
	top := 0.0
	for _, wr := range r.Workloads {
		for _, rw := range wr.Rows {
			top = math.Max(top, pick(rw).Max)
		}
	}
	top, step := niceScale(top)
	plotW := chartWidth - marginLeft - marginRight
	h := panelHeight - 30 // room for the workload labels
	scale := func(v float64) float64 { return y + h - v/top*h }
	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginLeft, marginLeft+plotW, scale(v), scale(v))
		text(b, marginLeft-6, scale(v)+4, "end", 11, fmtNum(v, decimals(step)))
	}
	n := max(len(r.Workloads), 1)
	groupW := plotW / float64(n)
	for gi, wr := range r.Workloads {
		gx := marginLeft + float64(gi)*groupW
		text(b, gx+groupW/2, y+h+18, "middle", 12, wr.Name)
		barW := math.Min(48, groupW*0.8/float64(max(len(wr.Rows), 1)))
		x0 := gx + (groupW-barW*float64(len(wr.Rows)))/2
		for i, rw := range wr.Rows {
			s := pick(rw)
			x := x0 + float64(i)*barW
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				x+1, scale(s.Median), barW-2, math.Max(0, y+h-scale(s.Median)), targetColors[rw.Target],
				esc(wr.Name), esc(rw.Target), fmtNum(s.Median, prec))
			cx := x + barW/2
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, cx, scale(s.Min), scale(s.Max))
			text(b, cx, scale(s.Max)-4, "middle", 10, fmtNum(s.Median, prec))
		}
	}
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", marginLeft, marginLeft+plotW, y+h, y+h)
}

// niceScale returns an axis top >= v and a tick step of 1, 2 or 5 × 10^k.
func niceScale(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 0.25
	}
	raw := v / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Ceil(v/step) * step, step
}

// decimals returns the decimals needed to print multiples of step.
func decimals(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step)))
}

// text writes an escaped text element.
func text(b *bytes.Buffer, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">%s</text>`+"\n", x, y, anchor, size, esc(s))
}

// esc escapes s for XML character data.
func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s)) //nolint:errcheck // bytes.Buffer does not fail
	return b.String()
}
