package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// answerBound is the longest any answer may take while a dependency is
// down: a generous bound that catches hangs, not a performance figure.
const answerBound = 15 * time.Second

// TestDependencyFaults runs imaged on a PostgreSQL cluster and a versitygw
// of its own, takes each of them away under load and brings it back: every
// request must get an answer within answerBound, a dependency failure must
// be a 503 SERVICE_UNAVAILABLE (never a 500 or a dropped connection),
// /readyz must say so, the service must recover by itself, and every upload
// it acknowledged must be readable afterwards.
func TestDependencyFaults(t *testing.T) {
	t.Parallel()
	requireBackends(t) // the same tools as the shared backends, but private instances
	pg := startPrivatePostgres(t)
	store := startPrivateS3(t)

	env := map[string]string{
		"IMAGED_DATABASE_URL":     pg.url,
		"IMAGED_S3_CREATE_BUCKET": "true",
		// The connect and response-header timeout of each S3 request. At
		// its default (30s) an object store that accepts connections and
		// never answers holds an upload or a download for about a minute
		// (the timeout, then once more on the client's retry) before the
		// 503: over answerBound.
		"IMAGED_S3_TIMEOUT": "3s",
	}
	for k, v := range store.env {
		env[k] = v
	}
	s := startServer(t, serverOpts{Env: env})
	alice, _ := users(t)
	token := s.Token(alice)
	seedData := pngImage(t, 24, 24, 3)
	seed := s.upload(t, token, file{"seed.png", "image/png", seedData})

	l := startLoad(t, s, token, seed, 4)
	// Whatever happens below, the load stops and what it saw is checked.
	t.Cleanup(func() {
		l.Stop()
		l.check(t)
		if r := s.get(t, "/readyz", ""); r.Status != http.StatusOK {
			if !t.Failed() {
				t.Errorf("/readyz answers %d at the end: the acknowledged uploads are not checked", r.Status)
			}
			return
		}
		l.checkAcknowledged(t, s, token)
	})

	// Each fault starts from a healthy service: stop at the first failure.
	ok := t.Run("postgres_stopped", func(t *testing.T) {
		l.waitAnswers(t, time.Now(), "before the outage", allOps, ok2xx)
		pg.stop(t)
		down := time.Now()
		waitReady(t, s, http.StatusServiceUnavailable)
		l.waitAnswers(t, down, "with PostgreSQL stopped", allOps, unavailable)
		wantError(t, s.get(t, "/api/images/"+seed.ID, token), http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")

		pg.start(t)
		waitReady(t, s, http.StatusOK)
		l.waitAnswers(t, time.Now(), "after PostgreSQL came back", allOps, ok2xx)
		checkWorks(t, s, token, seed, seedData)
	})

	ok = ok && t.Run("postgres_frozen", func(t *testing.T) {
		// SIGSTOP to every process of the cluster: connections are
		// accepted and never answered; IMAGED_DB_TIMEOUT (5s) must end
		// each wait.
		pg.signal(t, syscall.SIGSTOP)
		t.Cleanup(func() { pg.signal(t, syscall.SIGCONT) })
		down := time.Now()
		waitReady(t, s, http.StatusServiceUnavailable)
		l.waitAnswers(t, down, "with PostgreSQL frozen", allOps, unavailable)

		pg.signal(t, syscall.SIGCONT)
		waitReady(t, s, http.StatusOK)
		l.waitAnswers(t, time.Now(), "after PostgreSQL thawed", allOps, ok2xx)
		checkWorks(t, s, token, seed, seedData)
	})

	ok = ok && t.Run("object_storage_killed", func(t *testing.T) {
		store.kill(t)
		down := time.Now()
		waitReady(t, s, http.StatusServiceUnavailable)
		l.waitAnswers(t, down, "with versitygw killed", []string{opUpload, opDownload}, unavailable)
		// The metadata does not live in the object store.
		s.getImage(t, token, seed.ID)
		wantOK(t, s.get(t, "/api/images?pageSize=5", token), http.StatusOK)
		l.checkOnly(t, down, time.Now(), []string{opGet, opList}, ok2xx)

		store.start(t)
		waitReady(t, s, http.StatusOK)
		l.waitAnswers(t, time.Now(), "after versitygw came back", allOps, ok2xx)
		checkWorks(t, s, token, seed, seedData)
	})

	_ = ok && t.Run("object_storage_frozen", func(t *testing.T) {
		// SIGSTOP: connections are accepted by the kernel and never
		// answered, the worst case for timeouts.
		store.signal(t, syscall.SIGSTOP)
		t.Cleanup(func() { store.signal(t, syscall.SIGCONT) })
		down := time.Now()
		waitReady(t, s, http.StatusServiceUnavailable)
		l.waitAnswers(t, down, "with versitygw frozen", []string{opUpload, opDownload}, unavailable)
		s.getImage(t, token, seed.ID)
		l.checkOnly(t, down, time.Now(), []string{opGet, opList}, ok2xx)

		store.signal(t, syscall.SIGCONT)
		waitReady(t, s, http.StatusOK)
		l.waitAnswers(t, time.Now(), "after versitygw thawed", allOps, ok2xx)
		checkWorks(t, s, token, seed, seedData)
	})
}

// checkWorks checks by hand that reading and uploading work.
func checkWorks(t *testing.T, s *server, token string, seed imageObject, seedData []byte) {
	t.Helper()
	if got := s.getImage(t, token, seed.ID); got.ID != seed.ID {
		t.Errorf("GET seed: id %q", got.ID)
	}
	checkDownload(t, s, seed, seedData)
	data := pngImage(t, 16, 16, 9)
	img := s.upload(t, token, file{"after.png", "image/png", data})
	checkDownload(t, s, img, data)
}

// waitReady polls /readyz until it answers status (bounded).
func waitReady(t *testing.T, s *server, status int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		start := time.Now()
		r := s.get(t, "/readyz", "")
		if took := time.Since(start); took > answerBound {
			t.Errorf("/readyz took %s", took)
		}
		if r.Status == status {
			if status == http.StatusServiceUnavailable {
				wantError(t, r, status, "SERVICE_UNAVAILABLE")
			}
			return
		}
		if r.Status != http.StatusOK && r.Status != http.StatusServiceUnavailable {
			t.Fatalf("/readyz: status %d, want 200 or 503: %s", r.Status, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after 60s, want %d: %s", r.Status, status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The operations of the load.
const (
	opGet      = "GET /api/images/{id}"
	opList     = "GET /api/images"
	opDownload = "GET /cdn/{key}"
	opUpload   = "POST /api/media/upload"
)

var allOps = []string{opGet, opList, opDownload, opUpload}

// ok2xx and unavailable classify outcomes.
func ok2xx(o outcome) bool       { return o.err == nil && o.status >= 200 && o.status < 300 }
func unavailable(o outcome) bool { return o.err == nil && o.status == http.StatusServiceUnavailable }

// outcome is one request of the load and what came of it.
type outcome struct {
	op     string
	status int
	body   []byte
	err    error // no answer
	sent   time.Time
	took   time.Duration
}

// acknowledged is an upload answered 201.
type acknowledged struct {
	img  imageObject
	data []byte
}

// load sends requests from a few goroutines until stopped, and keeps what
// they got.
type load struct {
	s        *server
	token    string
	seed     imageObject
	client   *http.Client
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once

	mu       sync.Mutex
	outcomes []outcome
	acked    []acknowledged
	uploads  int
}

func startLoad(t *testing.T, s *server, token string, seed imageObject, workers int) *load {
	l := &load{
		s: s, token: token, seed: seed,
		// The timeout only ends a hang; answers slower than answerBound
		// fail the test anyway.
		client: &http.Client{Timeout: 2 * answerBound},
		stop:   make(chan struct{}),
	}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				case <-time.After(50 * time.Millisecond): // pacing, not synchronisation
				}
				l.record(l.do(allOps[i%len(allOps)]))
			}
		}()
	}
	return l
}

// Stop stops the load and waits for the requests in flight.
func (l *load) Stop() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *load) do(op string) outcome {
	var req *http.Request
	var err error
	var upload []byte
	switch op {
	case opGet:
		req, err = http.NewRequest(http.MethodGet, l.s.Base+"/api/images/"+l.seed.ID, nil)
	case opList:
		req, err = http.NewRequest(http.MethodGet, l.s.Base+"/api/images?pageSize=5", nil)
	case opDownload:
		req, err = http.NewRequest(http.MethodGet, l.seed.URL, nil)
	case opUpload:
		l.mu.Lock()
		l.uploads++
		n := l.uploads
		l.mu.Unlock()
		var buf bytes.Buffer
		if err := png.Encode(&buf, gradient(20, 12, uint64(n))); err != nil {
			return outcome{op: op, err: err}
		}
		upload = buf.Bytes()
		body, ct := multipartBody("file", file{fmt.Sprintf("load-%d.png", n), "image/png", upload})
		req, err = http.NewRequest(http.MethodPost, l.s.Base+"/api/media/upload", body)
		if err == nil {
			req.Header.Set("Content-Type", ct)
		}
	}
	if err != nil {
		return outcome{op: op, err: err}
	}
	if op != opDownload {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	o := outcome{op: op, sent: time.Now()}
	resp, err := l.client.Do(req)
	if err == nil {
		o.status = resp.StatusCode
		o.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	o.took = time.Since(o.sent)
	o.err = err
	if op == opUpload && err == nil && o.status == http.StatusCreated {
		var e envelope
		var img imageObject
		if json.Unmarshal(o.body, &e) == nil && json.Unmarshal(e.Data, &img) == nil && img.ID != "" {
			l.mu.Lock()
			l.acked = append(l.acked, acknowledged{img, upload})
			l.mu.Unlock()
		} else {
			o.err = fmt.Errorf("201 whose body names no image: %s", o.body)
		}
	}
	return o
}

func (l *load) record(o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
}

// waitAnswers waits (bounded) until each of ops has had, among the requests
// sent after since, one outcome that satisfies want.
func (l *load) waitAnswers(t *testing.T, since time.Time, what string, ops []string, want func(outcome) bool) {
	t.Helper()
	bound := 3 * answerBound
	deadline := time.Now().Add(bound)
	for {
		seen := map[string]bool{}
		l.mu.Lock()
		for _, o := range l.outcomes {
			if !o.sent.Before(since) && want(o) {
				seen[o.op] = true
			}
		}
		l.mu.Unlock()
		var missing []string
		for _, op := range ops {
			if !seen[op] {
				missing = append(missing, op)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: within %s no request to %s got the expected answer; the load saw:\n%s",
				what, bound, strings.Join(missing, ", "), l.summary(since))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOnly checks that every request to ops sent between from and to
// satisfied want.
func (l *load) checkOnly(t *testing.T, from, to time.Time, ops []string, want func(outcome) bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.outcomes {
		if o.sent.Before(from) || o.sent.After(to) || !slices.Contains(ops, o.op) {
			continue
		}
		if !want(o) {
			t.Errorf("%s sent %s into the outage: status %d, err %v: %s", o.op, o.sent.Sub(from).Round(time.Millisecond), o.status, o.err, o.body)
		}
	}
}

// summary counts the outcomes after since by operation and status.
func (l *load) summary(since time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for _, o := range l.outcomes {
		if o.sent.Before(since) {
			continue
		}
		k := o.op + " " + strconv.Itoa(o.status)
		if o.err != nil {
			k = o.op + " no answer"
		}
		counts[k]++
	}
	var b strings.Builder
	for _, op := range allOps {
		for k, n := range counts {
			if strings.HasPrefix(k, op+" ") {
				fmt.Fprintf(&b, "  %s: %d\n", k, n)
			}
		}
	}
	return b.String()
}

// check checks every outcome: an answer within answerBound, a success or a
// 503 in the envelope.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	byStatus := map[int]int{}
	slowest := map[string]time.Duration{}
	for _, o := range l.outcomes {
		byStatus[o.status]++
		slowest[o.op] = max(slowest[o.op], o.took.Round(time.Millisecond))
		switch {
		case o.err != nil:
			t.Errorf("%s: no answer after %s: %v", o.op, o.took.Round(time.Millisecond), o.err)
			continue
		case o.took > answerBound:
			t.Errorf("%s: answered %d after %s, over %s", o.op, o.status, o.took.Round(time.Millisecond), answerBound)
		}
		want := http.StatusOK
		if o.op == opUpload {
			want = http.StatusCreated
		}
		if o.status == want {
			continue
		}
		if o.status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want %d or 503: %s", o.op, o.status, want, o.body)
			continue
		}
		var e envelope
		if err := json.Unmarshal(o.body, &e); err != nil || e.Success || e.Code != 503 || e.ErrorCode != "SERVICE_UNAVAILABLE" || e.Message == "" {
			t.Errorf("%s: a 503 that is not a SERVICE_UNAVAILABLE envelope: %s", o.op, o.body)
		}
	}
	t.Logf("load: %d requests, by status %v; %d uploads acknowledged; slowest answers %v", len(l.outcomes), byStatus, len(l.acked), slowest)
}

// checkAcknowledged checks that every upload answered 201 can be read back,
// its metadata and its bytes.
func (l *load) checkAcknowledged(t *testing.T, s *server, token string) {
	t.Helper()
	l.mu.Lock()
	acked := l.acked
	l.mu.Unlock()
	for _, a := range acked {
		r := s.get(t, "/api/images/"+a.img.ID, token)
		if r.Status != http.StatusOK {
			t.Errorf("acknowledged upload %s (%s): GET answers %d: %s", a.img.ID, a.img.OriginalFilename, r.Status, r.Body)
			continue
		}
		dl := s.get(t, a.img.URL, "")
		if dl.Status != http.StatusOK || !bytes.Equal(dl.Body, a.data) {
			t.Errorf("acknowledged upload %s (%s): GET url answers %d with %d bytes, want 200 and the %d uploaded",
				a.img.ID, a.img.OriginalFilename, dl.Status, len(dl.Body), len(a.data))
		}
	}
}

// runScript runs one of the repository's scripts and returns the values of
// the export lines it prints.
func runScript(t *testing.T, script string, args ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join("..", "scripts", script)}, args...)...)
	// The scripts read IMAGED_TEST_*: keep the shared backends' settings out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGED_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/%s %s: %v\n%s", script, strings.Join(args, " "), err, stderr.String())
	}
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok || !strings.HasPrefix(sc.Text(), "export ") {
			continue
		}
		exports[name] = strings.Trim(value, `'"`)
	}
	return exports
}

// privatePostgres is a PostgreSQL cluster of one test, from
// scripts/start-postgres.sh.
type privatePostgres struct {
	dir string
	url string
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	// Not t.TempDir: the server runs as the postgres user, which must reach
	// the directory.
	dir, err := os.MkdirTemp("", "imaged-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privatePostgres{dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "bash", filepath.Join("..", "scripts", "start-postgres.sh"), "destroy", dir).CombinedOutput(); err != nil {
			t.Errorf("destroying the cluster in %s: %v\n%s", dir, err, out)
		}
	})
	p.url = runScript(t, "start-postgres.sh", "start", dir)["IMAGED_TEST_DATABASE_URL"]
	if p.url == "" {
		t.Fatal("scripts/start-postgres.sh printed no IMAGED_TEST_DATABASE_URL")
	}
	return p
}

// stop stops the cluster (pg_ctl stop -m fast: sessions are ended).
func (p *privatePostgres) stop(t *testing.T) {
	t.Helper()
	runScript(t, "start-postgres.sh", "stop", p.dir)
}

// start starts the stopped cluster again, on the same port.
func (p *privatePostgres) start(t *testing.T) {
	t.Helper()
	if u := runScript(t, "start-postgres.sh", "start", p.dir)["IMAGED_TEST_DATABASE_URL"]; u != p.url {
		t.Fatalf("PostgreSQL came back at another address (%s)", u)
	}
}

// signal sends sig to the postmaster and then to every process it started.
func (p *privatePostgres) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(p.dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatalf("PostgreSQL is not running: %v", err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("postmaster.pid: %q", first)
	}
	if err := syscall.Kill(postmaster, sig); err != nil {
		t.Fatalf("%v to the postmaster: %v", sig, err)
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(raw, ')')
		fields := strings.Fields(string(raw[i+1:]))
		if i < 0 || len(fields) < 2 || fields[1] != strconv.Itoa(postmaster) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.Fields(string(raw))[0]))
		if err == nil {
			syscall.Kill(pid, sig)
		}
	}
}

// privateS3 is a versitygw of one test, from scripts/start-versitygw.sh.
type privateS3 struct {
	dir  string
	port string
	pid  int
	env  map[string]string // IMAGED_S3_*
}

func startPrivateS3(t *testing.T) *privateS3 {
	t.Helper()
	p := &privateS3{dir: t.TempDir()}
	t.Cleanup(func() {
		if p.pid > 0 {
			syscall.Kill(p.pid, syscall.SIGCONT)
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	p.start(t)
	return p
}

// start starts versitygw in p.dir, on the port of the first start.
func (p *privateS3) start(t *testing.T) {
	t.Helper()
	args := []string{"start", p.dir}
	if p.port != "" {
		args = append(args, p.port)
	}
	exports := runScript(t, "start-versitygw.sh", args...)
	pid, err := strconv.Atoi(exports["IMAGED_TEST_S3_PID"])
	if err != nil {
		t.Fatalf("scripts/start-versitygw.sh printed no pid: %v", exports)
	}
	p.pid = pid
	env := map[string]string{}
	for k, v := range exports {
		if name, ok := strings.CutPrefix(k, "IMAGED_TEST_S3_"); ok && name != "PID" {
			env["IMAGED_S3_"+name] = v
		}
	}
	u, err := url.Parse(env["IMAGED_S3_ENDPOINT"])
	if err != nil || u.Port() == "" {
		t.Fatalf("scripts/start-versitygw.sh printed endpoint %q", env["IMAGED_S3_ENDPOINT"])
	}
	if p.port != "" && u.Port() != p.port {
		t.Fatalf("versitygw came back on port %s, not %s", u.Port(), p.port)
	}
	p.port = u.Port()
	p.env = env
}

func (p *privateS3) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.pid, sig); err != nil {
		t.Fatalf("%v to versitygw: %v", sig, err)
	}
}

// kill kills versitygw and waits until its port refuses connections.
func (p *privateS3) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+p.port, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("versitygw still accepts connections 10s after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
