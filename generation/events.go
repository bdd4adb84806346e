package generation

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
)

// EventView is one event of a job as a stream shows it: a succeeded event
// carries the job's images still stored.
type EventView struct {
	*imaged.JobEvent
	Images []*imaged.Image
}

// eventBatch bounds the events read at once.
const eventBatch = 100

// lookback is how far back in time the poll of RecentJobEvents reaches
// before its previous run: an event committed late (a transaction that took
// long, a replica whose clock is behind) is still seen.
const lookback = 5 * time.Second

// Watch sends the caller's job's events after seq `after`, in order, as they
// are recorded by whichever replica runs the job, and returns nil once it has
// sent the event that ends the job, or when MaxStream has passed (the caller
// resumes from the last Seq it got). idle is called after each heartbeat
// interval without an event, for the caller to keep its connection alive. A
// send or idle error ends the watch with that error. The job must be owner's:
// EJobNotFound otherwise, before anything is sent.
func (s *Service) Watch(ctx context.Context, owner, id string, after int64, heartbeat time.Duration, send func(*EventView) error, idle func() error) error {
	job, err := s.jobs.FindJob(ctx, owner, id)
	if err != nil {
		return err
	}
	w := &watcher{job: job.ID, wake: make(chan struct{}, 1)}
	w.after.Store(after)
	s.watch.add(w)
	defer s.watch.remove(w)

	end := time.NewTimer(s.cfg.MaxStream)
	defer end.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	// A slow read of the job's own events, besides the shared poll: the
	// stream ends even if every notification were lost.
	fallback := time.NewTicker(10 * s.cfg.EventPoll)
	defer fallback.Stop()
	for {
		evs, err := s.jobs.JobEvents(ctx, job.ID, w.after.Load(), eventBatch)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			v := &EventView{JobEvent: ev}
			if ev.Type == imaged.JobSucceeded {
				for _, imgID := range ev.ImageIDs {
					img, err := s.images.Get(ctx, owner, imgID)
					if imaged.ErrCode(err) == imaged.ENotFound {
						continue // deleted since
					} else if err != nil {
						return err
					}
					v.Images = append(v.Images, img)
				}
			}
			if err := send(v); err != nil {
				return err
			}
			w.after.Store(ev.Seq)
			if ev.Terminal() {
				return nil
			}
			beat.Reset(heartbeat)
		}
		if len(evs) == eventBatch {
			continue
		}
		if len(evs) == 0 && (job.Status == imaged.JobSucceeded || job.Status == imaged.JobFailed) {
			return nil // it had ended before, and the caller saw its end
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-w.wake:
		case <-fallback.C:
		case <-beat.C:
			if err := idle(); err != nil {
				return err
			}
		}
	}
}

// watcher is one stream waiting for a job's events.
type watcher struct {
	job   string
	after atomic.Int64 // the last Seq sent
	wake  chan struct{}
}

func (w *watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// watchers are this process's streams by job. While there is one, a single
// goroutine asks the database every EventPoll which jobs have new events
// (one query whatever the number of streams) and wakes their streams;
// changes this process makes wake them at once (notify).
type watchers struct {
	s       *Service
	mu      sync.Mutex
	byJob   map[string]map[*watcher]struct{}
	polling bool
}

func newWatchers(s *Service) *watchers {
	return &watchers{s: s, byJob: map[string]map[*watcher]struct{}{}}
}

func (ws *watchers) add(w *watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	set := ws.byJob[w.job]
	if set == nil {
		set = map[*watcher]struct{}{}
		ws.byJob[w.job] = set
	}
	set[w] = struct{}{}
	if !ws.polling {
		ws.polling = true
		go ws.poll()
	}
}

func (ws *watchers) remove(w *watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.byJob[w.job], w)
	if len(ws.byJob[w.job]) == 0 {
		delete(ws.byJob, w.job)
	}
}

// notify wakes the streams of job id.
func (ws *watchers) notify(id string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.byJob[id] {
		w.poke()
	}
}

// poll runs while there are streams, then stops.
func (ws *watchers) poll() {
	since := ws.s.cfg.Now().Add(-lookback)
	t := time.NewTicker(ws.s.cfg.EventPoll)
	defer t.Stop()
	for range t.C {
		ws.mu.Lock()
		if len(ws.byJob) == 0 {
			ws.polling = false
			ws.mu.Unlock()
			return
		}
		ws.mu.Unlock()
		started := ws.s.cfg.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		heads, err := ws.s.jobs.RecentJobEvents(ctx, since)
		cancel()
		if err != nil {
			ws.s.log.Warn("job events not polled", "err", err)
			continue
		}
		since = started.Add(-lookback)
		ws.mu.Lock()
		for id, seq := range heads {
			for w := range ws.byJob[id] {
				if seq > w.after.Load() {
					w.poke()
				}
			}
		}
		ws.mu.Unlock()
	}
}
