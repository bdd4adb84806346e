package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blobtest"
	"github.com/imaged/imaged/s3"
)

// testConfig is the server from IMAGED_TEST_S3_* (scripts/start-versitygw.sh
// prints them), with a fresh key prefix so that no two stores share blobs.
// Without a server the test is skipped, unless IMAGED_TEST_REQUIRE_BACKENDS=1
// (as in CI), where it fails.
func testConfig(t *testing.T) s3.Config {
	t.Helper()
	cfg := s3.Config{
		Endpoint:        os.Getenv("IMAGED_TEST_S3_ENDPOINT"),
		Bucket:          os.Getenv("IMAGED_TEST_S3_BUCKET"),
		Region:          "us-east-1",
		AccessKeyID:     os.Getenv("IMAGED_TEST_S3_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("IMAGED_TEST_S3_SECRET_ACCESS_KEY"),
		PathStyle:       true,
		// The smallest part S3 allows, so that the suite's several-MiB
		// blobs go through multipart uploads of more than one part.
		PartSize:     s3.MinPartSize,
		CreateBucket: true,
	}
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		const msg = "no S3 server: set IMAGED_TEST_S3_ENDPOINT, IMAGED_TEST_S3_BUCKET, IMAGED_TEST_S3_ACCESS_KEY_ID and IMAGED_TEST_S3_SECRET_ACCESS_KEY (eval \"$(scripts/start-versitygw.sh)\")"
		if os.Getenv("IMAGED_TEST_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg.Prefix = "test-" + rand.Text() + "/"
	return cfg
}

func open(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	s, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	testConfig(t)
	blobtest.Test(t, func(t *testing.T) imaged.BlobStore { return open(t, testConfig(t)) })
}

func TestPingAnswers(t *testing.T) {
	s := open(t, testConfig(t))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestPingOfAMissingBucketFails(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bucket = "imaged-absent-" + strings.ToLower(rand.Text()[:10])
	cfg.CreateBucket = false
	s := open(t, cfg)
	if err := s.Ping(t.Context()); err == nil {
		t.Fatalf("Ping of bucket %s that does not exist succeeded", cfg.Bucket)
	}
}

func TestLargeStreamIsAMultipartUpload(t *testing.T) {
	cfg := testConfig(t)
	cfg.PartSize = 0 // the default, 8 MiB: five full parts and a partial one
	s := open(t, cfg)
	const size = 40<<20 + 4321
	sum := sha256.New()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := s.Put(t.Context(), "large.bin", io.TeeReader(blobtest.Content(size, 42), sum))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n != size {
		t.Fatalf("Put stored %d bytes, want %d", n, size)
	}
	// Everything allocated during the Put, freed or not, bounds the memory
	// it held: one part's buffer and change, not the whole stream.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*s3.DefaultPartSize {
		t.Errorf("Put of %d MiB allocated %d MiB, more than 3 parts of %d MiB", size>>20, alloc>>20, s3.DefaultPartSize>>20)
	}
	want := hex.EncodeToString(sum.Sum(nil))

	b, err := s.Open(t.Context(), "large.bin")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	if b.Size() != size {
		t.Errorf("Size() = %d, want %d", b.Size(), size)
	}
	sum.Reset()
	if _, err := io.Copy(sum, b); err != nil {
		t.Fatalf("reading back: %v", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != want {
		t.Fatalf("SHA-256 read back %s, stored %s", got, want)
	}
	info, err := s.Stat(t.Context(), "large.bin")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Size != size {
		t.Errorf("Stat size = %d, want %d", info.Size, size)
	}
	// A multipart object's ETag ends in "-<number of parts>".
	raw, err := rawClient(t, cfg).StatObject(t.Context(), cfg.Bucket, cfg.Prefix+"large.bin", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject: %v", err)
	}
	if !strings.HasSuffix(raw.ETag, "-6") {
		t.Errorf("ETag %q is not that of a 6-part upload", raw.ETag)
	}
}

// TestUnreachableServerIsUnavailable points the store at a port where nothing
// listens: every operation must answer EUnavailable (503), not an internal
// error, and give up by itself rather than hang.
func TestUnreachableServerIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	s, err := s3.Open(t.Context(), s3.Config{
		Endpoint:        "http://" + addr,
		Bucket:          "imaged",
		Region:          "us-east-1",
		AccessKeyID:     "key",
		SecretAccessKey: "secret",
		PathStyle:       true,
		Timeout:         2 * time.Second,
	})
	if err != nil {
		t.Fatalf("Open does not contact the server, yet failed: %v", err)
	}
	for name, op := range map[string]func(context.Context) error{
		"ping": func(ctx context.Context) error { return s.Ping(ctx) },
		"stat": func(ctx context.Context) error { _, err := s.Stat(ctx, "some-key"); return err },
		"open": func(ctx context.Context) error { _, err := s.Open(ctx, "some-key"); return err },
		"put": func(ctx context.Context) error {
			_, err := s.Put(ctx, "some-key", strings.NewReader("x"))
			return err
		},
		"delete": func(ctx context.Context) error { return s.Delete(ctx, "some-key") },
		"walk": func(ctx context.Context) error {
			return s.Walk(ctx, "", func(imaged.BlobInfo) error { return nil })
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A generous bound so that a hang fails the test instead of
			// stalling it; the store must give up well before, on its own
			// (minio-go retries for a few seconds).
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			err := op(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s did not give up before the test's deadline", name)
			}
			if code := imaged.ErrCode(err); code != imaged.EUnavailable {
				t.Errorf("%s error = %v (code %q), want code %q", name, err, code, imaged.EUnavailable)
			}
		})
	}
}

// rawClient is a minio-go client on the test server, to look behind the store.
func rawClient(t *testing.T, cfg s3.Config) *minio.Core {
	t.Helper()
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.NewCore(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func incompleteUploads(t *testing.T, c *minio.Core, cfg s3.Config) []string {
	t.Helper()
	var keys []string
	for u := range c.ListIncompleteUploads(t.Context(), cfg.Bucket, cfg.Prefix, true) {
		if u.Err != nil {
			t.Fatalf("listing multipart uploads: %v", u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys
}

// TestFailedPutAbortsItsMultipartUpload checks that an upload whose reader
// fails after a part has been sent does not leave its parts on the server.
func TestFailedPutAbortsItsMultipartUpload(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	c := rawClient(t, cfg)

	// An upload left open on purpose shows that the listing sees them.
	control := cfg.Prefix + "control"
	id, err := c.NewMultipartUpload(t.Context(), cfg.Bucket, control, minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("starting the control upload: %v", err)
	}
	defer c.AbortMultipartUpload(context.Background(), cfg.Bucket, control, id)

	readErr := errors.New("reader broke")
	r := io.MultiReader(blobtest.Content(2*s3.MinPartSize+1000, 7), errReader{readErr})
	if _, err := s.Put(t.Context(), "broken", r); !errors.Is(err, readErr) {
		t.Fatalf("Put error = %v, want the reader's error", err)
	}
	if got := incompleteUploads(t, c, cfg); !slices.Equal(got, []string{control}) {
		t.Errorf("multipart uploads left: %q, want only %q", got, control)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want s3.Config
		ok   bool
	}{
		{
			name: "not_configured_without_a_bucket",
			env:  map[string]string{"IMAGED_S3_ENDPOINT": "http://minio:9000"},
			ok:   false,
		},
		{
			name: "imaged_variables",
			env: map[string]string{
				"IMAGED_S3_ENDPOINT": "http://minio:9000", "IMAGED_S3_BUCKET": "images",
				"IMAGED_S3_REGION": "eu-west-3", "IMAGED_S3_ACCESS_KEY_ID": "AK",
				"IMAGED_S3_SECRET_ACCESS_KEY": "SK", "IMAGED_S3_PATH_STYLE": "true",
				"AWS_ACCESS_KEY_ID": "ignored", "AWS_REGION": "ignored",
			},
			want: s3.Config{Endpoint: "http://minio:9000", Bucket: "images", Region: "eu-west-3",
				AccessKeyID: "AK", SecretAccessKey: "SK", PathStyle: true, UseTLS: false},
			ok: true,
		},
		{
			name: "aws_fallbacks",
			env: map[string]string{
				"IMAGED_S3_BUCKET": "images", "AWS_ENDPOINT_URL": "https://generic.example",
				"AWS_ENDPOINT_URL_S3": "https://s3.example", "AWS_REGION": "us-west-2",
				"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK",
			},
			want: s3.Config{Endpoint: "https://s3.example", Bucket: "images", Region: "us-west-2",
				AccessKeyID: "AK", SecretAccessKey: "SK", UseTLS: true},
			ok: true,
		},
		{
			name: "generic_aws_endpoint",
			env:  map[string]string{"IMAGED_S3_BUCKET": "b", "AWS_ENDPOINT_URL": "http://local:4566"},
			want: s3.Config{Endpoint: "http://local:4566", Bucket: "b"},
			ok:   true,
		},
		{
			name: "aws_itself_by_default",
			env:  map[string]string{"IMAGED_S3_BUCKET": "b", "IMAGED_S3_PATH_STYLE": "0"},
			want: s3.Config{Endpoint: "s3.amazonaws.com", Bucket: "b", UseTLS: true},
			ok:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := s3.ConfigFromEnv(env(tc.env))
			if ok != tc.ok {
				t.Fatalf("ok = %t, want %t", ok, tc.ok)
			}
			if ok && got != tc.want {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestConfigNeverShowsTheSecret(t *testing.T) {
	cfg := s3.Config{Endpoint: "http://x", Bucket: "b", AccessKeyID: "AK", SecretAccessKey: "hunter2-secret"}
	var logged bytes.Buffer
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), cfg.String(),
	} {
		logged.WriteString(s)
	}
	if strings.Contains(logged.String(), "hunter2") {
		t.Errorf("the secret key shows in %s", logged.String())
	}
	if !strings.Contains(logged.String(), "AK") {
		t.Errorf("the formatted config lost its fields: %s", logged.String())
	}
}

func TestOpenRefusesABadConfig(t *testing.T) {
	for name, cfg := range map[string]s3.Config{
		"no_bucket":       {Endpoint: "http://127.0.0.1:1"},
		"no_endpoint":     {Bucket: "b"},
		"ftp_endpoint":    {Endpoint: "ftp://127.0.0.1:1", Bucket: "b"},
		"endpoint_path":   {Endpoint: "http://127.0.0.1:1/some/path", Bucket: "b"},
		"part_too_small":  {Endpoint: "http://127.0.0.1:1", Bucket: "b", PartSize: 1 << 20},
		"endpoint_userpw": {Endpoint: "http://u:p@127.0.0.1:1", Bucket: "b"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s3.Open(t.Context(), cfg); err == nil {
				t.Errorf("Open(%v) succeeded", cfg)
			}
		})
	}
}
