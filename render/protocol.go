package render

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// The render worker protocol: the parent writes a request frame on the
// worker's stdin and reads one reply frame from its stdout, one render at a
// time. A frame is a 9-byte head (kind, header length, body length, both
// big-endian uint32), a JSON header and a body of raw bytes.
//
//	request  'R': header {options, limits}, body: the source image
//	reply    'O': header {mediaType, width, height}, body: the variant
//	reply    'E': header {code, message, detail}, no body
const (
	frameRequest = 'R'
	frameOK      = 'O'
	frameError   = 'E'

	maxFrameHeader = 64 << 10
)

type requestHeader struct {
	Options Options `json:"options"`
	Limits  Limits  `json:"limits"`
}

type okHeader struct {
	MediaType string `json:"mediaType"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

type errorHeader struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"` // the cause, for the parent's log only
}

func writeFrame(w io.Writer, kind byte, header any, body []byte) error {
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	var head [9]byte
	head[0] = kind
	binary.BigEndian.PutUint32(head[1:], uint32(len(h)))
	binary.BigEndian.PutUint32(head[5:], uint32(len(body)))
	if _, err := w.Write(head[:]); err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

// readFrame reads one frame, refusing a header over maxFrameHeader and a
// body over maxBody, and decodes the header into header.
func readFrame(r io.Reader, maxBody int64, header any) (kind byte, body []byte, err error) {
	var head [9]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	hn, bn := binary.BigEndian.Uint32(head[1:]), binary.BigEndian.Uint32(head[5:])
	if hn > maxFrameHeader || int64(bn) > maxBody {
		return 0, nil, fmt.Errorf("render protocol: frame of %d+%d bytes over the limit", hn, bn)
	}
	buf := make([]byte, int(hn)+int(bn))
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	if err := json.Unmarshal(buf[:hn], header); err != nil {
		return 0, nil, fmt.Errorf("render protocol: %w", err)
	}
	return head[0], buf[hn:], nil
}
