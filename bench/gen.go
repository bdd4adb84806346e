package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/sqlite"
)

// genOwner is the subject of the generated images, so that they do not
// change what the other benchmarks list.
const genOwner = "bench-gen"

// genWarmup is the load before each measured window of the generation
// benchmark, not counted.
const genWarmup = time.Second

// genClients are the concurrencies every generation figure is measured at.
var genClients = []int{1, 16}

// genPrompt is the prompt of every generation: the builtin renderer is
// deterministic, so each of its images costs the same.
const genPrompt = "a lighthouse at dusk, waves breaking on the rocks"

// fixedGenerator is a provider that answers at once with the same image:
// what a generation costs with it is the service's own work.
type fixedGenerator struct{ png []byte }

func (fixedGenerator) Name() string { return "fixed" }

func (fixedGenerator) Models() []imaged.Model {
	return []imaged.Model{{ID: "fixed", AspectRatios: []string{"1:1"}, MaxImages: 1, MaxPromptLength: 4000}}
}

func (g fixedGenerator) Generate(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	return []imaged.GeneratedImage{{Data: g.png}}, nil
}

// genRow is one thing measured at every concurrency of genClients.
type genRow struct {
	name      string
	unit      string    // what one op makes: "gen/s", "img/s"
	who       string    // "client" or "conn"
	inProcess bool      // the work is this process's, not imaged's
	res       []*result // one per genClients
}

// measureGeneration measures, at each concurrency of genClients, the
// service's own cost per generation (in-process, with a provider that
// answers at once), the builtin provider's render time, and generations
// through the API of imaged on be with the builtin provider.
func (b *bench) measureGeneration(ctx context.Context, be *backend) error {
	// The fixed image is the builtin provider's square render of the
	// prompt, so that the three figures are about the same bytes.
	made, err := builtin.New().Generate(ctx, imaged.GenerateRequest{Prompt: genPrompt, AspectRatio: "1:1", N: 1})
	if err != nil {
		return fmt.Errorf("builtin: %w", err)
	}
	fixed := made[0].Data
	w, h, _ := builtin.Size("1:1")

	svc, closeSvc, err := newGenService(ctx, filepath.Join(b.work, "gen"), fixedGenerator{fixed})
	if err != nil {
		return err
	}
	defer closeSvc()
	service := &genRow{name: "generation (fixed provider, in-process)", unit: "gen/s", who: "client", inProcess: true}
	for _, c := range genClients {
		service.res = append(service.res, b.measureOps(ctx, service.name, c, 0, func(int) (op, func()) {
			return func(ctx context.Context) error {
				_, err := svc.Generate(ctx, genOwner, generation.Request{Prompt: genPrompt, Provider: "fixed"})
				return err
			}, func() {}
		}))
	}
	closeSvc()

	rows := []*genRow{service}
	for _, ar := range []string{"1:1", "16:9"} {
		w, h, _ := builtin.Size(ar)
		row := &genRow{name: fmt.Sprintf("builtin render %dx%d (%s)", w, h, ar), unit: "img/s", who: "client", inProcess: true}
		req := imaged.GenerateRequest{Prompt: genPrompt, Model: builtin.ModelID, AspectRatio: ar, N: 1}
		g := builtin.New()
		for _, c := range genClients {
			row.res = append(row.res, b.measureOps(ctx, row.name, c, 0, func(int) (op, func()) {
				return func(ctx context.Context) error {
					_, err := g.Generate(ctx, req)
					return err
				}, func() {}
			}))
		}
		rows = append(rows, row)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	api, err := b.measureGenerateAPI(ctx, be)
	if err != nil {
		return err
	}
	rows = append(rows, api)

	fmt.Fprintf(b.report, "\ngeneration  %s per run after a %s warm-up; prompt of %d characters; the fixed provider's image: the builtin's %dx%d render of it, a %.0f KiB PNG:\n",
		b.o.genDur, genWarmup, len(genPrompt), w, h, float64(len(fixed))/1024)
	width := 0
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	for _, r := range rows {
		fmt.Fprintf(b.report, "  %-*s  %s\n", width, r.name, genLine(r))
	}
	if s, rd, a := service.res[0], rows[1].res[0], api.res[0]; s.Requests > 0 && rd.Requests > 0 && a.Requests > 0 {
		rest := a.Latency.mean() - rd.Latency.mean() - s.Latency.mean()
		fmt.Fprintf(b.report, "  at 1 client, mean: render %s + service %s = %s; through the API %s: %s left for HTTP, authentication, JSON and what differed between the runs (other load on the machine)\n",
			ms(rd.Latency.mean()), ms(s.Latency.mean()), ms(rd.Latency.mean()+s.Latency.mean()), ms(a.Latency.mean()), ms(rest))
	}
	genDetails(b.report, rows)
	fmt.Fprintln(b.report)
	return nil
}

// newGenService returns a generation service over a new SQLite file and
// blob directory in dir, whose only provider is p, with no quota, as
// imaged's defaults are; close closes its database (more than once is
// harmless).
func newGenService(ctx context.Context, dir string, p imaged.Generator) (svc *generation.Service, closeDB func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite: %w", err)
	}
	closed := false
	closeDB = func() {
		if !closed {
			closed = true
			db.Close()
		}
	}
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		closeDB()
		return nil, nil, fmt.Errorf("open blob directory: %w", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	imgs := images.New(db, blobs, images.Config{Logger: quiet})
	svc, err = generation.New(imgs, db, db, generation.Config{
		Providers:       []imaged.Generator{p},
		DefaultProvider: p.Name(),
		Logger:          quiet,
	})
	if err != nil {
		closeDB()
		return nil, nil, err
	}
	return svc, closeDB, nil
}

// measureGenerateAPI starts imaged on be and measures synchronous
// generations with the builtin provider through its API.
func (b *bench) measureGenerateAPI(ctx context.Context, be *backend) (*genRow, error) {
	srv, err := b.startImaged(ctx, be, "imaged-gen.log")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	url := srv.base + "/api/images/generate"
	body, err := json.Marshal(generation.Request{Prompt: genPrompt, AspectRatio: "1:1"})
	if err != nil {
		return nil, err
	}
	header := http.Header{
		"Authorization": {"Bearer " + b.tokens[genOwner]},
		"Content-Type":  {"application/json"},
	}
	post := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err == nil {
			req.Header = header.Clone()
		}
		return req, err
	}

	// One generation first, to check the answer and the stored bytes.
	req, err := post(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkGenerated(ctx, req); err != nil {
		return nil, fmt.Errorf("POST /api/images/generate: %w", err)
	}

	w, h, _ := builtin.Size("1:1")
	row := &genRow{name: fmt.Sprintf("POST /api/images/generate builtin %dx%d (HTTP, %s)", w, h, be.name), unit: "img/s", who: "conn"}
	for _, c := range genClients {
		row.res = append(row.res, b.measureOps(ctx, row.name, c, srv.pid(), func(int) (op, func()) {
			client, done := newClient(c)
			return func(ctx context.Context) error {
				req, err := post(ctx)
				if err != nil {
					return err
				}
				return send(client, req, http.StatusOK)
			}, done
		}))
	}
	srv.stop()
	return row, ctx.Err()
}

// checkGenerated sends a generation request that must answer 200 with one
// 1024-pixel image whose bytes its URL serves.
func checkGenerated(ctx context.Context, req *http.Request) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var answer struct {
		Data []struct {
			URL           string
			Width, Height int
			FileSize      int64
		}
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return err
	}
	if len(answer.Data) != 1 || answer.Data[0].Width != 1024 || answer.Data[0].Height != 1024 {
		return fmt.Errorf("not one 1024x1024 image: %s", raw)
	}
	png, err := get(ctx, answer.Data[0].URL, nil)
	if err != nil {
		return err
	}
	if int64(len(png)) != answer.Data[0].FileSize {
		return fmt.Errorf("the image's URL serves %d bytes, not its %d", len(png), answer.Data[0].FileSize)
	}
	return nil
}

// measureOps runs newOp's ops with c workers for genWarmup then -gen-d;
// pid is imaged's process when the ops are requests to it.
func (b *bench) measureOps(ctx context.Context, name string, c, pid int, newOp func(i int) (op, func())) *result {
	l := load{Conns: c, Warmup: genWarmup, Dur: b.o.genDur}
	return b.measureWith(ctx, name, l, pid, func(l load) *result { return l.drive(ctx, newOp) })
}

// genLine formats a row's figures at every concurrency on one line.
func genLine(r *genRow) string {
	parts := make([]string, len(r.res))
	for i, res := range r.res {
		who := r.who
		if genClients[i] > 1 {
			who += "s"
		}
		s := fmt.Sprintf("%d %s: %.1f %s  mean %s p50 %s p99 %s", genClients[i], who, res.throughput(), r.unit,
			ms(res.Latency.mean()), ms(res.Latency.quantile(0.5)), ms(res.Latency.quantile(0.99)))
		if res.Errors > 0 {
			s += fmt.Sprintf(" ERRORS %d (first: %s)", res.Errors, res.FirstErr)
		} else if !r.inProcess {
			s += " errors 0"
		}
		parts[i] = s
	}
	return strings.Join(parts, " | ")
}

// genDetails writes a table of the generation figures: the ops measured
// (what the quantiles rest on), more quantiles, errors, and where the CPU
// went. The CPU per op is this process's for the
// in-process rows (the service, or the renderer, and the few instructions
// of the loop around it) and imaged's for the API.
func genDetails(w io.Writer, rows []*genRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\t\tclients\tops\tops/s\tmean\tp50\tp90\tp99\tmax\terrors\tCPU/op\tits cores\tload-gen cores\tother processes' cores\t")
	for _, row := range rows {
		for i, r := range row.res {
			secs := r.Elapsed.Seconds()
			cpu, gen := r.ServerCPU, fmt.Sprintf("%.2f", r.ClientCPU.Seconds()/secs)
			if row.inProcess {
				cpu, gen = r.ClientCPU, "-"
			}
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.2f\t%s\t%.2f\t\n", row.name, genClients[i],
				r.Requests, r.throughput(), ms(r.Latency.mean()), ms(r.Latency.quantile(0.5)), ms(r.Latency.quantile(0.9)),
				ms(r.Latency.quantile(0.99)), ms(r.Latency.quantile(1)), r.Errors, ms(r.perRequest(cpu)),
				cpu.Seconds()/secs, gen, r.OtherCPU.Seconds()/secs)
		}
	}
	tw.Flush()
}
