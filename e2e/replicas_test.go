package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// backend is a PostgreSQL database and an S3 bucket for imaged, as the
// IMAGED_* settings of the server.
type backend map[string]string

// requireBackends returns the PostgreSQL database and S3 bucket of
// IMAGED_E2E_*, or skips the test when they are not set (fails it when
// IMAGED_TEST_REQUIRE_BACKENDS=1, as in CI).
func requireBackends(t *testing.T) backend {
	t.Helper()
	b := backend{}
	var missing []string
	for _, name := range []string{"DATABASE_URL", "S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} {
		v := os.Getenv(e2ePrefix + name)
		if v == "" {
			missing = append(missing, e2ePrefix+name)
		}
		b["IMAGED_"+name] = v
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("needs PostgreSQL and S3: %s not set (bash .ci/run sets them; "+
			"or eval \"$(scripts/start-postgres.sh)\" and \"$(scripts/start-versitygw.sh)\" and copy IMAGED_TEST_* to IMAGED_E2E_*)",
			strings.Join(missing, ", "))
		if os.Getenv("IMAGED_TEST_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if !strings.HasPrefix(b["IMAGED_DATABASE_URL"], "postgres") {
		t.Fatalf("%sDATABASE_URL must be a postgres:// URL", e2ePrefix)
	}
	b["IMAGED_S3_CREATE_BUCKET"] = "true"
	return b
}

// privateSchema creates a schema of its own in the database of dbURL, drops
// it at cleanup, and returns dbURL with search_path set to it. The replicas
// of one test share their job queue: without this, the servers of other
// tests on the same database would claim (and fail) this test's jobs.
func privateSchema(t *testing.T, dbURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting to %sDATABASE_URL: %v", e2ePrefix, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var b [6]byte
	rand.Read(b[:])
	schema := "e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("CREATE SCHEMA: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// kill ends the process with SIGKILL, as a crash or an OOM kill would, and
// waits for it. Stop does nothing afterwards.
func (s *server) kill(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			t.Errorf("imaged exited on its own: %v", s.err)
			return
		default:
		}
		if err := s.cmd.Process.Kill(); err != nil {
			t.Errorf("SIGKILL: %v", err)
		}
		<-s.exited
	})
}

// txt2imgPNG is what the fake web UI paints: a small PNG.
var txt2imgPNG = func() []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, gradient(48, 32, 5)); err != nil {
		panic(err)
	}
	return buf.Bytes()
}()

// fakeWebUI is a Stable Diffusion web UI (AUTOMATIC1111) for the sdwebui
// provider. It answers POST {replica}/sdapi/v1/txt2img at once with
// txt2imgPNG, except for the first prompt containing holdMarker: that one
// it holds until the caller goes away or the test ends, and reports on held.
type fakeWebUI struct {
	URL  string
	held chan string // the replica path ("a", "b") of each held request

	mu      sync.Mutex
	calls   map[string][]string // replica path -> prompts, in order
	holding bool                // a request has been held
}

const holdMarker = "[hold]"

func newFakeWebUI(t *testing.T) *fakeWebUI {
	t.Helper()
	f := &fakeWebUI{held: make(chan string, 16), calls: map[string][]string{}}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replica, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if r.Method != http.MethodPost || rest != "sdapi/v1/txt2img" {
			http.Error(w, `{"detail":"Not Found"}`, http.StatusNotFound)
			return
		}
		var req struct {
			Prompt string `json:"prompt"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"detail":"bad request"}`, http.StatusUnprocessableEntity)
			return
		}
		f.mu.Lock()
		f.calls[replica] = append(f.calls[replica], req.Prompt)
		hold := strings.Contains(req.Prompt, holdMarker) && !f.holding
		f.holding = f.holding || hold
		f.mu.Unlock()
		if hold {
			f.held <- replica
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		answerTxt2img(w)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for held requests
	f.URL = srv.URL
	return f
}

// answerTxt2img answers a txt2img call as the web UI does, with txt2imgPNG.
func answerTxt2img(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"images":     []string{base64.StdEncoding.EncodeToString(txt2imgPNG)},
		"parameters": map[string]any{},
		"info":       `{"seed": 1, "all_seeds": [1]}`,
	})
}

// prompts returns the prompts replica has sent so far.
func (f *fakeWebUI) prompts(replica string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls[replica])
}

// jobObject is a generation job as the API shows it.
type jobObject struct {
	ID       string      `json:"id"`
	Status   string      `json:"status"`
	Provider string      `json:"provider"`
	Prompt   string      `json:"prompt"`
	Attempts int         `json:"attempts"`
	Images   []generated `json:"images"`
	Error    *struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	} `json:"error"`
}

// TestReplicas runs two imaged processes on one PostgreSQL database and one
// S3 bucket, with one JWT secret, and checks that they behave as one
// service: what one replica stores the other serves, idempotency keys and
// quotas hold across them, and a generation job whose replica dies is
// finished by the other.
func TestReplicas(t *testing.T) {
	t.Parallel()
	be := requireBackends(t)
	be["IMAGED_DATABASE_URL"] = privateSchema(t, be["IMAGED_DATABASE_URL"])
	fake := newFakeWebUI(t)

	var secret [32]byte
	rand.Read(secret[:])
	// A short job lease keeps the recovery short; the generation timeout
	// is long enough for the test to kill the replica holding the job
	// before that replica gives up on it.
	const (
		generationTimeout = 10 * time.Second
		jobLease          = 3 * time.Second
	)
	replicaEnv := func(name, workers string) map[string]string {
		env := map[string]string{
			"IMAGED_JWT_SECRET":           hex.EncodeToString(secret[:]),
			"IMAGED_QUOTA_IMAGES_PER_DAY": "3",
			"IMAGED_GENERATION_TIMEOUT":   generationTimeout.String(),
			"IMAGED_JOB_LEASE":            jobLease.String(),
			"IMAGED_WORKERS":              workers,
			"IMAGED_SDWEBUI_URL":          fake.URL + "/" + name,
			// The fake answers at once: the synchronous generations
			// below stay far from the short timeout.
			"IMAGED_DEFAULT_PROVIDER": "sdwebui",
		}
		for k, v := range be {
			env[k] = v
		}
		return env
	}
	a := startServer(t, serverOpts{Env: replicaEnv("a", "1")})
	b := startServer(t, serverOpts{Env: replicaEnv("b", "2")})
	replicas := map[string]*server{"a": a, "b": b}

	alice, bob := users(t)
	// One secret: a token minted for a is good on b too.
	token := a.Token(alice)

	t.Run("one_replica_stores_the_other_serves", func(t *testing.T) {
		data := pngImage(t, 30, 20, 11)
		name := "replicated-" + alice + ".png"
		up := a.upload(t, token, file{name, "image/png", data})

		got := b.getImage(t, token, up.ID)
		want := up
		want.URL = strings.Replace(up.URL, a.Base, b.Base, 1)
		if got != want {
			t.Errorf("through b the image is\n%+v\nthrough a it was\n%+v", got, want)
		}
		e := wantOK(t, b.get(t, "/api/images?search="+url.QueryEscape(name), token), http.StatusOK)
		if listed := ids(dataList(t, b, e)); !slices.Equal(listed, []string{up.ID}) {
			t.Errorf("b lists %v, want [%s]", listed, up.ID)
		}
		checkDownload(t, b, got, data)

		wantOK(t, b.delete(t, "/api/images/"+up.ID, token), http.StatusOK)
		wantError(t, a.get(t, "/api/images/"+up.ID, token), http.StatusNotFound, "MEDIA_NOT_FOUND")
		if r := a.get(t, up.URL, ""); r.Status != http.StatusNotFound {
			t.Errorf("GET url on a after the delete on b: status %d, want 404", r.Status)
		}
		if r := b.get(t, want.URL, ""); r.Status != http.StatusNotFound {
			t.Errorf("GET url on b after the delete on b: status %d, want 404", r.Status)
		}
	})

	// Each replica caches image metadata by id and by blob key; a deletion
	// on one must make both answer 404 at once (PostgreSQL LISTEN/NOTIFY).
	t.Run("deleted_image_is_404_on_every_replica_at_once_with_warm_caches", func(t *testing.T) {
		for round, pair := range [][2]*server{{a, b}, {b, a}, {a, b}, {b, a}} {
			deleter, other := pair[0], pair[1]
			up := deleter.upload(t, token, file{fmt.Sprintf("cached-%d.png", round), "image/png", pngImage(t, 12, 9, uint64(round))})
			urls := map[*server]string{}
			for _, s := range []*server{deleter, other} {
				for range 3 { // warm both caches: by id and by blob key
					got := s.getImage(t, token, up.ID)
					urls[s] = got.URL
					if r := s.get(t, got.URL, ""); r.Status != http.StatusOK {
						t.Fatalf("round %d: GET url: status %d", round, r.Status)
					}
				}
			}
			wantOK(t, deleter.delete(t, "/api/images/"+up.ID, token), http.StatusOK)
			for _, s := range []*server{other, deleter} {
				wantError(t, s.get(t, "/api/images/"+up.ID, token), http.StatusNotFound, "MEDIA_NOT_FOUND")
				if r := s.get(t, urls[s], ""); r.Status != http.StatusNotFound {
					t.Errorf("round %d: GET url right after the delete: status %d, want 404", round, r.Status)
				}
			}
		}
	})

	t.Run("idempotent_replay_across_replicas", func(t *testing.T) {
		tok := a.Token(bob)
		body := map[string]string{"prompt": "a lantern on a pier"}
		key := `"replica-key-1"`
		first := a.postJSON(t, "/api/images/generate-with-idempotency", tok, body, "Idempotency-Key", key)
		firstGens := decodeGenerated(t, wantOK(t, first, http.StatusOK))
		if h := first.Header.Get("Idempotent-Replayed"); h != "" {
			t.Errorf("the first answer (a) says Idempotent-Replayed: %q", h)
		}
		second := b.postJSON(t, "/api/images/generate-with-idempotency", tok, body, "Idempotency-Key", key)
		secondGens := decodeGenerated(t, wantOK(t, second, http.StatusOK))
		if h := second.Header.Get("Idempotent-Replayed"); h != "true" {
			t.Errorf("the replay on b says Idempotent-Replayed: %q, want true", h)
		}
		if !slices.Equal(generatedIDs(firstGens), generatedIDs(secondGens)) {
			t.Errorf("b replayed images %v, a made %v", generatedIDs(secondGens), generatedIDs(firstGens))
		}
		if n := countImages(t, b, tok); n != 1 {
			t.Errorf("bob has %d images after a generation and its replay, want 1", n)
		}
		r := b.postJSON(t, "/api/images/generate-with-idempotency", tok, map[string]string{"prompt": "another"}, "Idempotency-Key", key)
		wantError(t, r, http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_MISMATCH")
	})

	t.Run("quota_is_shared", func(t *testing.T) {
		carol := "carol-" + alice
		tok := a.Token(carol)
		for i, s := range []*server{a, a, b} {
			r := s.postJSON(t, "/api/images/generate", tok, map[string]string{"prompt": fmt.Sprintf("kite %d", i)})
			decodeGenerated(t, wantOK(t, r, http.StatusOK))
		}
		for name, s := range replicas {
			r := s.postJSON(t, "/api/images/generate", tok, map[string]string{"prompt": "one kite too many"})
			if r.Status != http.StatusTooManyRequests {
				t.Errorf("the fourth image on %s: status %d, want 429: %s", name, r.Status, r.Body)
				continue
			}
			wantError(t, r, http.StatusTooManyRequests, "IMAGE_GENERATION_QUOTA_EXCEEDED")
		}
		if n := countImages(t, b, tok); n != 3 {
			t.Errorf("carol has %d images, want 3", n)
		}
	})

	// Last: it kills a replica.
	t.Run("job_of_a_killed_replica_is_finished_by_the_other", func(t *testing.T) {
		dave := "dave-" + alice
		tok := a.Token(dave)
		prompt := "a slow sunrise " + holdMarker
		r := a.postJSON(t, "/api/images/generate", tok, map[string]string{"prompt": prompt, "provider": "sdwebui"}, "Prefer", "respond-async")
		wantOK(t, r, http.StatusAccepted)
		loc := r.Header.Get("Location")
		if loc == "" {
			t.Fatal("202 without Location")
		}

		// Usually a, woken by the submission, claims the job; b polls and
		// may win. Whichever holds it dies.
		var holder string
		select {
		case holder = <-fake.held:
		case <-time.After(30 * time.Second):
			t.Fatal("no replica called the provider within 30s of the submission")
		}
		claimed := time.Now()
		victim := replicas[holder]
		survivorName := "b"
		if holder == "b" {
			survivorName = "a"
		}
		survivor := replicas[survivorName]
		victim.kill(t)
		t.Logf("replica %s held the job and was killed; waiting for %s to take it over", holder, survivorName)

		// The lease must pass before another replica claims the job.
		bound := jobLease + generationTimeout + 30*time.Second
		var job jobObject
		for {
			e := wantOK(t, survivor.get(t, loc, tok), http.StatusOK)
			if err := json.Unmarshal(e.Data, &job); err != nil {
				t.Fatalf("job: %v: %s", err, e.Data)
			}
			if job.Status == "succeeded" {
				break
			}
			if job.Status != "queued" && job.Status != "running" {
				t.Fatalf("job status %q, want running then succeeded: %s", job.Status, e.Data)
			}
			if time.Since(claimed) > bound {
				t.Fatalf("job still %q %s after its replica died", job.Status, bound)
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%s finished the job %s after its replica died", survivorName, time.Since(claimed).Round(time.Second))
		if got := fake.prompts(survivorName); !slices.Contains(got, prompt) {
			t.Errorf("the provider never heard %s ask for the job's prompt (it heard %q)", survivorName, got)
		}
		if job.Attempts < 2 {
			t.Errorf("job attempts = %d, want at least 2 (the killed run and the finished one)", job.Attempts)
		}
		if len(job.Images) != 1 {
			t.Fatalf("succeeded job has %d images, want 1", len(job.Images))
		}
		img := survivor.getImage(t, tok, job.Images[0].ID)
		if img.Source != "generation" || img.Provider != "sdwebui" || img.Prompt != prompt {
			t.Errorf("job image = source %q, provider %q, prompt %q; want generation, sdwebui, %q", img.Source, img.Provider, img.Prompt, prompt)
		}
		// The stored file is the provider's PNG with the AI-provenance marks
		// added: the same pixels, and the size the image object reports.
		dl := survivor.get(t, img.URL, "")
		if dl.Status != http.StatusOK || int64(len(dl.Body)) != img.FileSize {
			t.Errorf("GET the job's image: status %d, %d bytes; want 200 and the %d bytes of its fileSize", dl.Status, len(dl.Body), img.FileSize)
		} else if got, err := png.Decode(bytes.NewReader(dl.Body)); err != nil {
			t.Errorf("the job's image is not a PNG: %v", err)
		} else if want, _ := png.Decode(bytes.NewReader(txt2imgPNG)); !samePixels(got, want) {
			t.Errorf("the job's image has other pixels than the provider's PNG")
		}
		if n := countImages(t, survivor, tok); n != 1 {
			t.Errorf("dave has %d images, want 1 (the killed run must leave none)", n)
		}
	})
}

func generatedIDs(gens []generated) []string {
	out := make([]string, len(gens))
	for i, g := range gens {
		out[i] = g.ID
	}
	return out
}

// samePixels reports whether a and b have the same bounds and colours.
func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}
