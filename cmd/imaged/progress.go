package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// isTerminal reports whether w is a terminal (a character device), where a
// redrawn progress bar makes sense; in a pipe or a log it would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one file's upload on one terminal line, at most ten
// times a second.
type progressBar struct {
	w     io.Writer
	name  string
	total int64
	sent  int64
	drawn time.Time
	start time.Time
}

func newProgressBar(w io.Writer, name string, total int64) *progressBar {
	b := &progressBar{w: w, name: printable(truncate(name, 30)), total: total, start: time.Now()}
	b.draw()
	return b
}

func (b *progressBar) set(sent int64) {
	b.sent = sent
	if time.Since(b.drawn) >= 100*time.Millisecond || sent == b.total {
		b.draw()
	}
}

func (b *progressBar) draw() {
	b.drawn = time.Now()
	const width = 24
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.sent)/float64(b.total), 1)
	}
	full := int(frac * width)
	fmt.Fprintf(b.w, "\r%-30s [%s%s] %3.0f%%  %s / %s", b.name, strings.Repeat("#", full), strings.Repeat(" ", width-full),
		frac*100, humanBytes(b.sent), humanBytes(b.total))
}

// finish ends the bar's line; the server has answered.
func (b *progressBar) finish(ok bool) {
	b.draw()
	status := "done"
	if !ok {
		status = "failed"
	}
	fmt.Fprintf(b.w, "  %s in %s\n", status, time.Since(b.start).Round(10*time.Millisecond))
}
