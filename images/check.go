package images

import (
	"errors"
	"fmt"
	"io"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
)

// checker passes the bytes of an image through, unchanged, while
// container.Validate checks them in a goroutine of its own as they flow.
// At the end of the bytes it answers the validator's verdict instead of
// io.EOF, and as soon as the validator refuses the file it fails, so that
// the blob store that reads it keeps nothing. Memory: one small buffer in
// the validator, whatever the image.
type checker struct {
	src  io.Reader
	pw   *io.PipeWriter
	done chan struct{}
	info *container.Info
	err  error // the validator's verdict, once done is closed
	eof  bool
}

// newChecker starts validating what src yields; maxPixels bounds the
// canvas the header may declare.
func newChecker(src io.Reader, maxPixels int64) *checker {
	pr, pw := io.Pipe()
	c := &checker{src: src, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.info, c.err = container.Validate(pr, container.Options{Header: func(i container.Info) error {
			if int64(i.Width)*int64(i.Height) > maxPixels {
				return imaged.Errorf(imaged.ETooLarge, "Image dimensions %dx%d exceed the limit of %d pixels", i.Width, i.Height, maxPixels)
			}
			return nil
		}})
		if c.err != nil {
			c.err = validationError(c.err)
		}
		// Whatever the verdict, the writer side learns it at its next write.
		pr.CloseWithError(verdict(c.err))
	}()
	return c
}

// errValidated is what a write after a successful validation meets: bytes
// after the end of the image would have failed it, so this cannot happen
// unless the validator stopped reading early, which it never does.
var errValidated = errors.New("images: bytes after a validated image")

func verdict(err error) error {
	if err == nil {
		return errValidated
	}
	return err
}

func (c *checker) Read(p []byte) (int, error) {
	if c.eof {
		return 0, io.EOF
	}
	n, err := c.src.Read(p)
	if n > 0 {
		if _, werr := c.pw.Write(p[:n]); werr != nil {
			<-c.done
			return 0, c.err
		}
	}
	if err == io.EOF {
		c.pw.Close()
		<-c.done
		if c.err != nil {
			return 0, c.err
		}
		c.eof = true
		return n, io.EOF
	}
	if err != nil {
		c.pw.CloseWithError(err)
		<-c.done
		return n, err
	}
	return n, nil
}

// close stops the validator if the reading stopped early, and returns the
// result: the image's description, or why it was refused.
func (c *checker) close() (*container.Info, error) {
	c.pw.CloseWithError(errAborted)
	<-c.done
	return c.info, c.err
}

var errAborted = errors.New("images: upload aborted")

// validationError turns what the validator says into the application's
// error: a malformed or unknown file is EUnsupportedMedia, saying why;
// the reader's own errors (size limit, client gone) keep their meaning.
func validationError(err error) error {
	var fe *container.FormatError
	switch {
	case errors.As(err, &fe):
		return &imaged.Error{Code: imaged.EUnsupportedMedia, Err: err,
			Message: fmt.Sprintf("The file is not a well-formed %s image: %s (at byte %d)", fe.Format, fe.Reason, fe.Offset)}
	case errors.Is(err, container.ErrUnknownFormat):
		return unsupported()
	}
	return err
}

func unsupported() *imaged.Error {
	return imaged.Errorf(imaged.EUnsupportedMedia, "The file is not a well-formed image: only PNG, JPEG, GIF and WebP are accepted")
}
