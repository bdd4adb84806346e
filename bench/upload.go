package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"sync"
	"time"
)

// writeLargePNG writes a valid PNG of random pixels, stored without
// compression, whose size is just under limit bytes, and returns its size.
func writeLargePNG(path string, limit int64) (int64, error) {
	const width = 2000
	// The pixels are opaque, so the encoder writes RGB: an uncompressed row
	// is a filter byte and 3 bytes a pixel. Leave 1% for the zlib and chunk
	// framing.
	height := int(limit*99/100) / (1 + 3*width)
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	r := rand.NewChaCha8([32]byte{'i', 'm', 'a', 'g', 'e', 'd'})
	r.Read(img.Pix)
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 0xff
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(bw, img); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() > limit {
		return 0, fmt.Errorf("generated PNG is %d bytes, over the %d limit", st.Size(), limit)
	}
	return st.Size(), f.Close()
}

// uploadFile streams path as the "file" field of a multipart POST to url,
// without holding it in memory: the body is written through a pipe while it
// is sent. It returns the status and, on 201, the new image's id.
func uploadFile(ctx context.Context, client *http.Client, url, token, path string) (int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", "large.png")
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		pr.CloseWithError(err)
		return 0, "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return 0, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
		ErrorCode string `json:"errorCode"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return resp.StatusCode, "", fmt.Errorf("status %d, unreadable answer: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, "", fmt.Errorf("status %d %s", resp.StatusCode, body.ErrorCode)
	}
	return resp.StatusCode, body.Data.ID, nil
}

// uploadResult is what the upload memory test measured.
type uploadResult struct {
	Files, Created int
	FirstErr       string
	FileSize       int64
	Took           time.Duration
	Idle           memory // before the uploads
	PeakRSS        int64  // the largest VmRSS sampled during the uploads
	HWM            int64  // VmHWM at the end: the peak since the process started
	Samples        int
}

// uploadConcurrently sends n uploads of path at once to the server of pid at
// base while sampling its memory every 50ms.
func uploadConcurrently(ctx context.Context, pid int, base, token, path string, n int) (*uploadResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	res := &uploadResult{Files: n, FileSize: st.Size()}
	if res.Idle, err = readMemory(pid); err != nil {
		return nil, err
	}

	stopSampling := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m, err := readMemory(pid)
			if err != nil {
				sampled <- err
				return
			}
			res.PeakRSS = max(res.PeakRSS, m.RSS)
			res.HWM = m.HWM
			res.Samples++
			select {
			case <-stopSampling:
				sampled <- nil
				return
			case <-t.C:
			}
		}
	}()

	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: n, MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = time.Now()
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, err := uploadFile(ctx, client, base+"/api/media/upload", token, path)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && status == http.StatusCreated {
				res.Created++
			} else if res.FirstErr == "" {
				res.FirstErr = err.Error()
			}
		}()
	}
	wg.Wait()
	res.Took = time.Since(start)
	close(stopSampling)
	if err := <-sampled; err != nil {
		return nil, err
	}
	end, err := readMemory(pid)
	if err != nil {
		return nil, err
	}
	res.PeakRSS = max(res.PeakRSS, end.RSS)
	res.HWM = end.HWM
	return res, nil
}
