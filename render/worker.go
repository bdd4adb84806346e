package render

import (
	"bufio"
	"context"
	"errors"
	"io"

	"github.com/imaged/imaged"
)

// ServeWorker is the render worker's loop (`imaged render-worker`): it reads
// requests from r, renders each in this process and writes the replies to w,
// until r ends (the parent closed the pipe or died). The worker opens no
// file and no connection: its only input is r.
func ServeWorker(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		var req requestHeader
		kind, src, err := readFrame(br, maxWorkerSource, &req)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if kind != frameRequest {
			return errors.New("render worker: unexpected frame")
		}
		res, err := renderBytes(context.Background(), src, req.Options, req.Limits)
		if err != nil {
			var ie *imaged.Error
			h := errorHeader{Code: string(imaged.EInternal), Message: imaged.ErrMessage(err), Detail: err.Error()}
			if errors.As(err, &ie) {
				h.Code = string(ie.Code)
			}
			err = writeFrame(bw, frameError, h, nil)
		} else {
			err = writeFrame(bw, frameOK, okHeader{res.MediaType, res.Width, res.Height}, res.Data)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return err
		}
	}
}

// maxWorkerSource bounds a request's source in the worker; the parent's
// Limits.MaxSourceBytes is the real bound, this one guards the protocol.
const maxWorkerSource = 1 << 30
