// Package webhooks tells a job's webhook what became of the job: it sends
// the deliveries that the job store queues (a job's start and its end) to
// the URL the request gave, signed as the Standard Webhooks specification
// says (headers webhook-id, webhook-timestamp and webhook-signature, an
// HMAC-SHA256 of "id.timestamp.body" keyed with the owner's whsec_ secret),
// through the SSRF-safe outbound client, and retries them on a fixed
// schedule with jitter until the receiver answers 2xx (410 Gone stops them).
//
// Deliveries live in the database: any replica sends them, one replica per
// attempt (a lease, as for jobs), and they survive restarts. A delivery
// keeps its id and its body across attempts, so receivers can drop repeats.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/outbound"
)

// Schedule is the documented retry schedule: the delay before each retry
// after the first attempt, which is made at once (the schedule of the
// Standard Webhooks reference implementation, Svix): 5 seconds, 5 minutes,
// 30 minutes, 2 hours, 5 hours, 10 hours, 10 hours, so 8 attempts over about
// 27.6 hours. Each delay is moved by up to ±Jitter of itself at random.
var Schedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Jitter is the share of a delay it may move by either way.
const Jitter = 0.2

// PreviousSecretGrace is how long a rotated-out secret keeps signing beside
// the new one.
const PreviousSecretGrace = 24 * time.Hour

// maxResponse is how much of a receiver's answer is read (and thrown away).
const maxResponse = 64 << 10

// Doer sends a request: *outbound.Client.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Config tunes the service; zero values take the defaults noted.
type Config struct {
	Store imaged.WebhookStore
	// Client sends the deliveries; it must apply the outbound rules
	// (outbound.New with no redirects). Required.
	Client *outbound.Client
	// Payload renders the body of a delivery at its first attempt: the
	// JSON of {"type", "timestamp", "data"}. Required.
	Payload func(ctx context.Context, d *imaged.WebhookDelivery) ([]byte, error)
	// Schedule replaces the package's Schedule (tests make it short).
	Schedule     []time.Duration
	Workers      int           // deliveries sent at once by this process; 2
	PollInterval time.Duration // how often idle senders look for due deliveries; 1s
	// AttemptTimeout bounds one attempt, connecting included; 15s. The
	// lease of an attempt is twice that.
	AttemptTimeout time.Duration
	WorkerID       string // unique per process; random if empty
	Now            func() time.Time
	Logger         *slog.Logger
	// Attempted, when set, hears the outcome of every attempt this
	// process made (for metrics).
	Attempted func(d *imaged.WebhookDelivery)
}

// Service signs and sends webhook deliveries.
type Service struct {
	cfg  Config
	do   Doer
	log  *slog.Logger
	wake chan struct{}
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Client == nil || cfg.Payload == nil {
		return nil, errors.New("webhooks: Store, Client and Payload are required")
	}
	if cfg.Schedule == nil {
		cfg.Schedule = Schedule
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 15 * time.Second
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = "webhooks-" + imaged.NewBlobKey("")[:12]
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, do: cfg.Client, log: cfg.Logger, wake: make(chan struct{}, 1)}, nil
}

// NewSecret returns a fresh signing secret: "whsec_" and the base64 of 32
// random bytes, the form Standard Webhooks libraries take.
func NewSecret() string {
	b := make([]byte, 32)
	crand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the webhook-signature value for one attempt: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body" under each secret, separated by
// spaces (during a rotation both the new and the previous secret sign).
func Sign(id string, timestamp int64, body []byte, secrets ...string) (string, error) {
	var sigs []string
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || len(key) == 0 {
			return "", errors.New("webhooks: malformed secret")
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%d.", id, timestamp)
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// Secret returns owner's signing secret, making one the first time.
func (s *Service) Secret(ctx context.Context, owner string) (*imaged.WebhookSecret, error) {
	return s.cfg.Store.WebhookSecret(ctx, owner, NewSecret(), s.now())
}

// RotateSecret gives owner a new secret; the previous one keeps signing
// beside it for PreviousSecretGrace.
func (s *Service) RotateSecret(ctx context.Context, owner string) (*imaged.WebhookSecret, error) {
	now := s.now()
	return s.cfg.Store.RotateWebhookSecret(ctx, owner, NewSecret(), now, now.Add(PreviousSecretGrace))
}

// Deliveries lists the deliveries of owner's job.
func (s *Service) Deliveries(ctx context.Context, owner, jobID string) ([]*imaged.WebhookDelivery, error) {
	return s.cfg.Store.WebhookDeliveries(ctx, owner, jobID)
}

// CheckURL tells whether a delivery to rawURL would be refused by the
// outbound rules now: an *imaged.Error (VALIDATION_ERROR) saying which rule,
// never what the name resolved to.
func (s *Service) CheckURL(ctx context.Context, rawURL string) error {
	err := s.cfg.Client.Check(ctx, rawURL)
	var re *outbound.RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return &imaged.Error{Code: imaged.EValidation, Message: re.Reason, Err: err}
	default:
		return &imaged.Error{Code: imaged.EValidation, Message: "its host name does not resolve", Err: err}
	}
}

// Wake makes an idle sender look for due deliveries now (a job of this
// process just changed).
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Senders send due deliveries until stopped.
type Senders struct {
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Stop stops the senders and waits for attempts in flight (each bounded by
// AttemptTimeout). An attempt cut short is made again when its lease passes.
func (w *Senders) Stop() {
	if w == nil {
		return
	}
	w.stop()
	w.wg.Wait()
}

// Start starts Config.Workers senders.
func (s *Service) Start(ctx context.Context) *Senders {
	ctx, stop := context.WithCancel(ctx)
	w := &Senders{stop: stop}
	for range s.cfg.Workers {
		w.wg.Go(func() {
			for ctx.Err() == nil {
				sent, err := s.DeliverOne(ctx)
				if err != nil && ctx.Err() == nil {
					s.log.WarnContext(ctx, "webhook sender", "err", err)
				}
				if sent {
					continue
				}
				t := time.NewTimer(s.cfg.PollInterval)
				select {
				case <-ctx.Done():
				case <-s.wake:
				case <-t.C:
				}
				t.Stop()
			}
		})
	}
	return w
}

// DeliverOne claims one due delivery and makes one attempt; sent is false
// when none was due.
func (s *Service) DeliverOne(ctx context.Context) (sent bool, err error) {
	now := s.now()
	d, err := s.cfg.Store.ClaimWebhookDelivery(ctx, s.cfg.WorkerID, now, now.Add(2*s.cfg.AttemptTimeout))
	if err != nil || d == nil {
		return false, err
	}
	s.attempt(ctx, d)
	d.UpdatedAt = s.now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.cfg.Store.FinishWebhookAttempt(fctx, d, s.cfg.WorkerID); err != nil {
		return true, fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	if s.cfg.Attempted != nil {
		s.cfg.Attempted(d)
	}
	return true, nil
}

// attempt sends d once and sets its outcome: delivered on 2xx, failed on
// 410 or when the schedule has run out, else pending at the next time of
// the schedule.
func (s *Service) attempt(ctx context.Context, d *imaged.WebhookDelivery) {
	d.Attempts++
	log := s.log.With("delivery", d.ID, "job", d.JobID, "attempt", d.Attempts)
	status, err := s.send(ctx, d)
	d.LastStatus = status
	switch {
	case err == nil && status >= 200 && status < 300:
		d.Status, d.LastError = imaged.DeliveryDelivered, ""
		log.InfoContext(ctx, "webhook delivered", "status", status)
		return
	case err == nil && status == http.StatusGone:
		d.Status, d.LastError = imaged.DeliveryFailed, "the receiver answered 410 Gone: no more attempts"
		log.InfoContext(ctx, "webhook receiver is gone", "status", status)
		return
	case err == nil:
		d.LastError = "the receiver answered " + strconv.Itoa(status)
	default:
		d.LastError = err.Error()
	}
	if d.Attempts > len(s.cfg.Schedule) {
		d.Status = imaged.DeliveryFailed
		log.WarnContext(ctx, "webhook given up", "err", d.LastError)
		return
	}
	delay := s.cfg.Schedule[d.Attempts-1]
	if spread := int64(float64(delay) * Jitter); spread > 0 {
		delay += time.Duration(rand.Int64N(2*spread+1) - spread)
	}
	d.NextAttemptAt = s.now().Add(delay)
	log.WarnContext(ctx, "webhook attempt failed", "err", d.LastError, "retry_in", delay.Round(time.Millisecond))
}

// send makes one signed POST of d's body (rendering it the first time) and
// returns the receiver's status.
func (s *Service) send(ctx context.Context, d *imaged.WebhookDelivery) (int, error) {
	if d.Body == nil {
		body, err := s.cfg.Payload(ctx, d)
		if err != nil {
			return 0, fmt.Errorf("rendering the payload: %w", err)
		}
		d.Body = body
	}
	sec, err := s.Secret(ctx, d.Owner)
	if err != nil {
		return 0, fmt.Errorf("reading the secret: %w", err)
	}
	now := s.now()
	secrets := []string{sec.Secret}
	if sec.Previous != "" && now.Before(sec.PreviousUntil) {
		secrets = append(secrets, sec.Previous)
	}
	ts := now.Unix()
	sig, err := Sign(d.ID, ts, d.Body, secrets...)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, errors.New("the URL is malformed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imaged-webhooks/1")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.do.Do(req)
	if err != nil {
		var re *outbound.RefusedError
		if errors.As(err, &re) {
			return 0, errors.New("refused: " + re.Reason)
		}
		if ctx.Err() != nil {
			return 0, errors.New("the receiver did not answer in time")
		}
		return 0, errors.New("the receiver could not be reached")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	return resp.StatusCode, nil
}
