package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imaged/imaged"
)

// RenderQueue is what a render pool tells about its queue (render.Pool's
// Stats gives these).
type RenderQueue interface {
	// RenderLoad returns the renders running and waiting for a worker, and
	// how many were refused so far because the queue was full.
	RenderLoad() (busy, queued int, rejected uint64)
}

// RenderLoadFunc adapts a function to RenderQueue.
type RenderLoadFunc func() (busy, queued int, rejected uint64)

// RenderLoad calls f.
func (f RenderLoadFunc) RenderLoad() (int, int, uint64) { return f() }

// RenderDone records one render that had a worker, with its duration and
// error: it has the signature of render.Config.Observe.
func (t *Telemetry) RenderDone(d time.Duration, err error) {
	if t == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if c := imaged.ErrCode(err); c != imaged.EInternal {
			outcome = string(c)
		}
	}
	t.renders.WithLabelValues(outcome).Observe(d.Seconds())
}

// WatchRenders reports the renders running, queued and refused, asked of q
// at each scrape.
func (t *Telemetry) WatchRenders(q RenderQueue) {
	if t == nil || q == nil {
		return
	}
	t.Registry.MustRegister(&renderCollector{q: q,
		busy:     prometheus.NewDesc("imaged_render_busy", "Variant renders running.", nil, nil),
		queued:   prometheus.NewDesc("imaged_render_queue_depth", "Variant renders waiting for a worker.", nil, nil),
		rejected: prometheus.NewDesc("imaged_render_rejected_total", "Variant renders refused because the render queue was full.", nil, nil),
	})
}

type renderCollector struct {
	q                      RenderQueue
	busy, queued, rejected *prometheus.Desc
}

func (c *renderCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.busy
	ch <- c.queued
	ch <- c.rejected
}

func (c *renderCollector) Collect(ch chan<- prometheus.Metric) {
	busy, queued, rejected := c.q.RenderLoad()
	ch <- prometheus.MustNewConstMetric(c.busy, prometheus.GaugeValue, float64(busy))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(queued))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(rejected))
}
