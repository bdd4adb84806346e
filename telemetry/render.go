package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imaged/imaged"
)

// RenderQueue is what a render pool tells about its queue (render.Pool's
// Stats gives these).
type RenderQueue interface {
	// RenderLoad returns the renders running and waiting for a worker.
	RenderLoad() (busy, queued int)
}

// RenderLoadFunc adapts a function to RenderQueue.
type RenderLoadFunc func() (busy, queued int)

// RenderLoad calls f.
func (f RenderLoadFunc) RenderLoad() (int, int) { return f() }

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

// RenderRejected counts a render refused because the queue was full.
func (t *Telemetry) RenderRejected() {
	if t != nil {
		t.renderRejected.Inc()
	}
}

// WatchRenders reports the renders running and queued, asked of q at each
// scrape.
func (t *Telemetry) WatchRenders(q RenderQueue) {
	if t == nil || q == nil {
		return
	}
	t.Registry.MustRegister(&renderCollector{q: q,
		busy:   prometheus.NewDesc("imaged_render_busy", "Variant renders running.", nil, nil),
		queued: prometheus.NewDesc("imaged_render_queue_depth", "Variant renders waiting for a worker.", nil, nil),
	})
}

type renderCollector struct {
	q            RenderQueue
	busy, queued *prometheus.Desc
}

func (c *renderCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.busy; ch <- c.queued }

func (c *renderCollector) Collect(ch chan<- prometheus.Metric) {
	busy, queued := c.q.RenderLoad()
	ch <- prometheus.MustNewConstMetric(c.busy, prometheus.GaugeValue, float64(busy))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(queued))
}
