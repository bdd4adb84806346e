package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
	imhttp "github.com/imaged/imaged/http"
	"github.com/imaged/imaged/outbound"
	"github.com/imaged/imaged/webhooks"
)

// webhookTimeout bounds one delivery attempt.
const webhookTimeout = 15 * time.Second

// payloadRenderer renders deliveries through the HTTP server, which knows
// how the API shows a job; the server and the service's own URL are set
// once they exist.
type payloadRenderer struct {
	srv  atomic.Pointer[imhttp.Server]
	base atomic.Pointer[string]
}

func (p *payloadRenderer) render(ctx context.Context, d *imaged.WebhookDelivery) ([]byte, error) {
	srv := p.srv.Load()
	if srv == nil {
		return nil, errors.New("the server is not started yet")
	}
	base := ""
	if b := p.base.Load(); b != nil {
		base = *b
	}
	return srv.WebhookPayload(ctx, d, base)
}

// newWebhooks returns the webhook sender: deliveries through the outbound
// guard (the IMAGED_OUTBOUND_ALLOW list shared with import by URL, no
// redirects), signed with each owner's secret.
func newWebhooks(cfg *config, store imaged.WebhookStore, log *slog.Logger) (*webhooks.Service, *payloadRenderer, error) {
	p := &payloadRenderer{}
	client := outbound.New(outbound.Config{
		Allow:        cfg.OutboundAllow,
		Timeout:      webhookTimeout,
		MaxRedirects: 0,
		MaxBody:      64 << 10,
	})
	svc, err := webhooks.New(webhooks.Config{
		Store:          store,
		Client:         client,
		Payload:        p.render,
		AttemptTimeout: webhookTimeout,
		Logger:         log,
	})
	return svc, p, err
}
