package generation

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// jobPayload is what a job carries for whoever runs it.
type jobPayload struct {
	Request     Request      `json:"request"`
	Reservation string       `json:"reservation"`
	Edit        *editPayload `json:"edit,omitempty"` // nil for a generation
}

// JobView is a job with its images, as the API shows it.
type JobView struct {
	*imaged.Job
	Request Request
	// EditOf is the id of the image an edit job edits, "" for a generation.
	EditOf string
	Images []*imaged.Image
}

// Submit validates r, reserves its quota (so a client over quota hears 429
// now, not later) and queues a job that a worker on any replica will run.
func (s *Service) Submit(ctx context.Context, owner string, r Request) (*JobView, error) {
	res, err := s.resolve(r)
	if err != nil {
		return nil, err
	}
	return s.enqueue(ctx, owner, res, nil)
}

// enqueue checks the webhook of a resolved request, reserves its quota and
// queues it; edit is nil for a generation.
func (s *Service) enqueue(ctx context.Context, owner string, res *resolved, edit *editPayload) (*JobView, error) {
	hook, err := s.CheckWebhook(ctx, res.original.Webhook)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	// The reservation's lease covers a queue wait and a run.
	reservation, err := s.quota.ReserveQuota(ctx, owner, res.req.N, s.cfg.Quota, now, now.Add(2*s.cfg.Timeout+time.Minute))
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(jobPayload{Request: res.original, Reservation: reservation, Edit: edit})
	ts := now.UTC().Truncate(time.Microsecond)
	job := &imaged.Job{
		ID:        imaged.NewID(),
		Owner:     owner,
		Status:    imaged.JobQueued,
		Provider:  res.provider.Name(),
		Request:   payload,
		Webhook:   hook,
		CreatedAt: ts,
		UpdatedAt: ts,
	}
	if err := s.jobs.CreateJob(ctx, job); err != nil {
		s.finishQuota(ctx, reservation, 0)
		return nil, err
	}
	s.changed(job.ID)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	v := &JobView{Job: job, Request: res.original}
	if edit != nil {
		v.EditOf = edit.Image
	}
	return v, nil
}

// Job returns the caller's job with its images once it succeeded.
func (s *Service) Job(ctx context.Context, owner, id string) (*JobView, error) {
	job, err := s.jobs.FindJob(ctx, owner, id) // malformed ids included
	if err != nil {
		return nil, err
	}
	return s.view(ctx, job)
}

// Limits of a jobs listing.
const (
	DefaultJobPageSize = 20
	MaxJobPageSize     = 100
)

// JobList is one page of an owner's jobs.
type JobList struct {
	Jobs  []*JobView
	Total int64          // the owner's jobs of the filter's status, all pages
	Next  *imaged.Cursor // nil on the last page
}

// Jobs lists f.Owner's jobs, newest first, each with its images.
// f.Limit is DefaultJobPageSize when 0, at most MaxJobPageSize.
func (s *Service) Jobs(ctx context.Context, f imaged.JobFilter) (*JobList, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultJobPageSize
	}
	f.Limit = min(f.Limit, MaxJobPageSize)
	page, err := s.jobs.ListJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &JobList{Jobs: make([]*JobView, 0, len(page.Jobs)), Total: page.TotalItems, Next: page.Next}
	for _, job := range page.Jobs {
		v, err := s.view(ctx, job)
		if err != nil {
			return nil, err
		}
		out.Jobs = append(out.Jobs, v)
	}
	return out, nil
}

// view is job as the API shows it: its request and its images still stored.
func (s *Service) view(ctx context.Context, job *imaged.Job) (*JobView, error) {
	owner := job.Owner
	v := &JobView{Job: job}
	var p jobPayload
	if json.Unmarshal(job.Request, &p) == nil {
		v.Request = p.Request
		if p.Edit != nil {
			v.EditOf = p.Edit.Image
		}
	}
	for _, imgID := range job.ImageIDs {
		img, err := s.images.Get(ctx, owner, imgID)
		if imaged.ErrCode(err) == imaged.ENotFound {
			continue // deleted since
		} else if err != nil {
			return nil, err
		}
		v.Images = append(v.Images, img)
	}
	return v, nil
}

// Workers run queued jobs until stopped.
type Workers struct {
	stopClaiming context.CancelFunc
	cancelRuns   context.CancelFunc
	wg           sync.WaitGroup
}

// Stop stops claiming new jobs and lets running ones finish for up to grace;
// then it cancels them, and each cancelled job is handed back to the queue
// for a worker on any replica to run again.
func (w *Workers) Stop(grace time.Duration) {
	if w == nil {
		return
	}
	w.stopClaiming()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.cancelRuns()
		<-done
	}
	w.cancelRuns()
}

// StartWorkers starts cfg.Workers workers that claim and run jobs until ctx
// ends or Stop is called; a job already running outlives ctx (see Stop).
func (s *Service) StartWorkers(ctx context.Context) *Workers {
	claimCtx, stopClaiming := context.WithCancel(ctx)
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	w := &Workers{stopClaiming: stopClaiming, cancelRuns: cancelRuns}
	for i := 0; i < s.cfg.Workers; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			s.work(claimCtx, runCtx)
		}()
	}
	return w
}

func (s *Service) work(claimCtx, runCtx context.Context) {
	for claimCtx.Err() == nil {
		ran, err := s.RunOne(runCtx)
		if err != nil && runCtx.Err() == nil {
			s.log.ErrorContext(runCtx, "job worker", "err", err)
		}
		if ran {
			continue
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-claimCtx.Done():
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// lease is how long a claimed job stays ours without renewal.
// It is renewed every third of it while the job runs, so a job outlives
// its lease only when its worker dies; then another takes it over.
func (s *Service) lease() time.Duration { return s.cfg.JobLease }

// RunOne claims one job and runs it; ran is false when none was waiting.
func (s *Service) RunOne(ctx context.Context) (ran bool, err error) {
	now := s.cfg.Now()
	job, err := s.jobs.ClaimJob(ctx, s.cfg.WorkerID, now, now.Add(s.lease()))
	if err != nil || job == nil {
		return false, err
	}
	s.changed(job.ID)
	log := s.log.With("job", job.ID, "attempt", job.Attempts)
	var p jobPayload
	if err := json.Unmarshal(job.Request, &p); err != nil {
		job.Status, job.ErrorCode, job.ErrorMessage = imaged.JobFailed, imaged.EGeneration, "The job is corrupt"
		return true, s.finishJob(ctx, job)
	}
	if job.Attempts > s.cfg.MaxJobAttempts {
		job.Status, job.ErrorCode, job.ErrorMessage = imaged.JobFailed, imaged.EGeneration, "The generation was interrupted too many times"
		s.finishQuota(ctx, p.Reservation, 0)
		return true, s.finishJob(ctx, job)
	}

	// Keep the lease while running.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(s.lease() / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				err := s.jobs.ExtendJob(rctx, job.ID, s.cfg.WorkerID, s.cfg.Now().Add(s.lease()))
				switch {
				case err == nil, rctx.Err() != nil:
				case imaged.ErrCode(err) == imaged.EConflict:
					log.WarnContext(rctx, "job lease lost; stopping", "err", err)
					stop()
					return
				default:
					// A passing database failure: the lease still has time,
					// try again at the next tick.
					log.WarnContext(rctx, "job lease not extended", "err", err)
				}
			}
		}
	}()

	// A context of its own: the lease goroutine above reads rctx.
	runCtx := imaged.WithProgress(rctx, s.progressOf(rctx, job.ID))
	var imgs []*imaged.Image
	var res *resolved
	if p.Edit != nil {
		res, err = s.resolveEdit(rctx, job.Owner, p.Edit.request(p.Request))
	} else {
		res, err = s.resolve(p.Request)
	}
	if err == nil {
		imgs, err = s.run(runCtx, job.Owner, res)
	}
	if ctx.Err() != nil {
		// Cancelled (shutdown past its grace): undo and hand the job back.
		s.discard(ctx, job.Owner, imgs)
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		job.Status, job.ImageIDs = imaged.JobQueued, nil
		if err := s.finishJob(hctx, job); err != nil {
			log.WarnContext(hctx, "job not handed back; it runs again when its lease passes", "err", err)
		}
		return true, ctx.Err()
	}
	if err != nil {
		job.Status = imaged.JobFailed
		job.ErrorCode, job.ErrorMessage = imaged.ErrCode(err), imaged.ErrMessage(err)
		log.WarnContext(ctx, "job failed", "err", err)
	} else {
		job.Status = imaged.JobSucceeded
		for _, img := range imgs {
			job.ImageIDs = append(job.ImageIDs, img.ID)
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := s.finishJob(fctx, job); ferr != nil {
		// Someone else holds the job now; our images would be duplicates.
		s.discard(ctx, job.Owner, imgs)
		return true, ferr
	}
	s.finishQuota(ctx, p.Reservation, len(imgs))
	return true, nil
}

// progressOf passes a job's progress, each percentage once and never
// backwards (a retried call starts again from 0), to Config.JobProgress and
// to the job's events. The events are recorded by a goroutine of their own
// until ctx ends, so that the provider's loop never waits on the database;
// percentages that arrive while one is being recorded fold into the next.
func (s *Service) progressOf(ctx context.Context, jobID string) imaged.ProgressFunc {
	var mu sync.Mutex
	last, pending := -1, -1
	kick := make(chan struct{}, 1)
	go func() {
		recorded := -1
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			mu.Lock()
			p := pending
			mu.Unlock()
			if p <= recorded {
				continue
			}
			err := s.jobs.ReportJobProgress(ctx, jobID, s.cfg.WorkerID, p, s.cfg.Now().UTC().Truncate(time.Microsecond))
			switch {
			case err == nil:
				recorded = p
				s.changed(jobID)
			case ctx.Err() == nil:
				s.log.DebugContext(ctx, "job progress not recorded", "job", jobID, "err", err)
			}
		}
	}()
	return func(percent int) {
		mu.Lock()
		defer mu.Unlock()
		if percent <= last {
			return
		}
		last, pending = percent, percent
		if s.cfg.JobProgress != nil {
			s.cfg.JobProgress(ctx, jobID, percent)
		}
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// changed tells this process's event streams, and Config.JobChanged, that
// job id has a new event.
func (s *Service) changed(id string) {
	s.watch.notify(id)
	if s.cfg.JobChanged != nil {
		s.cfg.JobChanged(id)
	}
}

// finishJob records the outcome of job, which this worker holds, as of now.
func (s *Service) finishJob(ctx context.Context, job *imaged.Job) error {
	job.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Microsecond)
	err := s.jobs.FinishJob(ctx, job, s.cfg.WorkerID)
	if err == nil {
		s.changed(job.ID)
	}
	return err
}
