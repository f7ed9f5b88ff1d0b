package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress is the bar kvgo eval draws on stderr. Work is counted in
// abstract units (the runner uses tokens to process, which track time far
// better than a count of cases of different lengths), and the ETA
// extrapolates the rate so far.
//
// On a terminal the bar redraws in place; elsewhere (CI logs, files) it
// prints a line at most every 10% so logs stay short.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	total    float64
	done     float64
	start    time.Time
	now      func() time.Time
	lastPct  int
	lastDraw time.Time
	width    int
}

// NewProgress starts a bar over total units. tty selects in-place redraws.
func NewProgress(w io.Writer, total float64, tty bool) *Progress {
	return newProgressAt(w, total, tty, time.Now)
}

func newProgressAt(w io.Writer, total float64, tty bool, now func() time.Time) *Progress {
	return &Progress{w: w, tty: tty, total: total, start: now(), now: now, lastPct: -1, width: 28}
}

// Add records finished units and redraws with label describing the current
// step.
func (p *Progress) Add(units float64, label string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = min(p.done+units, p.total)
	p.draw(label, false)
}

// Grow raises the total (work discovered while running).
func (p *Progress) Grow(units float64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total += units
	p.mu.Unlock()
}

// Done ends the bar with a final line; complete fills it (estimates of the
// work ahead are upper bounds: a case may stop at end-of-generation).
func (p *Progress) Done(label string, complete bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if complete {
		p.done = p.total
	}
	p.draw(label, true)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func (p *Progress) draw(label string, final bool) {
	now := p.now()
	frac := 0.0
	if p.total > 0 {
		frac = p.done / p.total
	}
	pct := int(100 * frac)
	if !final {
		if p.tty && now.Sub(p.lastDraw) < 100*time.Millisecond && pct == p.lastPct {
			return
		}
		if !p.tty && pct/10 == p.lastPct/10 && p.lastPct >= 0 {
			return
		}
	}
	p.lastPct, p.lastDraw = pct, now
	elapsed := now.Sub(p.start)
	eta := "--:--"
	if frac > 0 && !final {
		eta = clock(time.Duration(float64(elapsed) * (1 - frac) / frac))
	}
	fill := int(frac * float64(p.width))
	bar := strings.Repeat("█", fill) + strings.Repeat("░", p.width-fill)
	if r := []rune(label); len(r) > 40 {
		label = string(r[:39]) + "…"
	}
	line := fmt.Sprintf("%s %3d%% %s elapsed, eta %s  %s", bar, pct, clock(elapsed), eta, label)
	if final {
		line = fmt.Sprintf("%s %3d%% %s  %s", bar, pct, clock(elapsed), label)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// clock formats a duration as m:ss (or h:mm:ss).
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
