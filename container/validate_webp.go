package container

import (
	"encoding/binary"
	"io"
)

// VP8X flags.
const (
	vp8xAnimation = 1 << 1
	vp8xXMP       = 1 << 2
	vp8xEXIF      = 1 << 3
	vp8xAlpha     = 1 << 4
	vp8xICC       = 1 << 5
)

func (v *validation) webp() error {
	var canvasW, canvasH int
	var flags byte
	extended, images, frames := false, 0, 0
	seenANIM, alph := false, false
	for {
		p, err := v.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch p.Type {
		case "RIFF":
			continue
		case "VP8X":
			if extended || images > 0 {
				return v.r.errorf(p.Offset, "VP8X out of place")
			}
			b, err := v.r.Payload(64)
			if err != nil || len(b) < 10 {
				return v.r.errorf(p.Offset, "VP8X chunk of %d bytes", p.Size)
			}
			extended, flags = true, b[0]
			v.info.vp8x, v.info.vp8xPayload = p, b
			if b[0]&0xc1 != 0 {
				return v.r.errorf(p.Offset, "VP8X reserved flags set")
			}
			canvasW = int(uint32(b[4])|uint32(b[5])<<8|uint32(b[6])<<16) + 1
			canvasH = int(uint32(b[7])|uint32(b[8])<<8|uint32(b[9])<<16) + 1
			if err := v.dimensions(p, canvasW, canvasH); err != nil {
				return err
			}
		case "VP8 ", "VP8L":
			if images > 0 || frames > 0 || (extended && flags&vp8xAnimation != 0) {
				return v.r.errorf(p.Offset, "a second image bitstream")
			}
			if p.Type == "VP8L" && alph {
				return v.r.errorf(p.Offset, "ALPH before a lossless bitstream")
			}
			images++
			w, h, err := v.webpBitstream(p, v.r)
			if err != nil {
				return err
			}
			if extended && (w != canvasW || h != canvasH) {
				return v.r.errorf(p.Offset, "a %dx%d bitstream on a %dx%d canvas", w, h, canvasW, canvasH)
			}
			if err := v.dimensions(p, w, h); err != nil {
				return err
			}
		case "ALPH":
			if !extended || images > 0 || alph {
				return v.r.errorf(p.Offset, "ALPH out of place")
			}
			alph = true
			if err := v.webpAlpha(p, v.r); err != nil {
				return err
			}
		case "ANIM":
			if !extended || flags&vp8xAnimation == 0 || seenANIM || frames > 0 {
				return v.r.errorf(p.Offset, "ANIM out of place")
			}
			if p.Size != 6 {
				return v.r.errorf(p.Offset, "ANIM chunk of %d bytes", p.Size)
			}
			seenANIM = true
		case "ANMF":
			if !seenANIM {
				return v.r.errorf(p.Offset, "an animation frame without ANIM")
			}
			frames++
			if err := v.webpFrame(p, canvasW, canvasH); err != nil {
				return err
			}
		case "ICCP":
			if !extended || flags&vp8xICC == 0 || images > 0 || frames > 0 {
				return v.r.errorf(p.Offset, "ICCP out of place")
			}
			err = v.metadata(p, "icc", "")
		case "EXIF":
			err = v.metadata(p, "exif", "")
		case "XMP ":
			err = v.metadata(p, "xmp", "")
		case "C2PA":
			err = v.metadata(p, "c2pa", "")
		default:
			if !extended {
				return v.r.errorf(p.Offset, "chunk %q in a simple WebP", p.Type)
			}
		}
		if err != nil {
			return err
		}
	}
	if extended && flags&vp8xAnimation != 0 {
		if frames == 0 {
			return v.r.errorf(v.r.Offset(), "an animation without frames")
		}
		v.info.Frames = frames
	} else if images == 0 {
		return v.r.errorf(v.r.Offset(), "no image bitstream")
	}
	v.pending = nil
	return nil
}

// webpBitstream checks a VP8 or VP8L header read from src (the current
// part's payload) and returns its size.
func (v *validation) webpBitstream(p *Part, src io.Reader) (int, int, error) {
	var b [10]byte
	if p.Type == "VP8L" {
		if p.Size < 5 {
			return 0, 0, v.r.errorf(p.Offset, "VP8L chunk of %d bytes", p.Size)
		}
		if _, err := io.ReadFull(src, b[:5]); err != nil {
			return 0, 0, v.r.readErr(err)
		}
		bits := binary.LittleEndian.Uint32(b[1:5])
		if b[0] != 0x2f || bits>>29 != 0 {
			return 0, 0, v.r.errorf(p.Offset, "not a VP8L bitstream (signature or version)")
		}
		return int(bits&0x3fff) + 1, int(bits>>14&0x3fff) + 1, nil
	}
	if p.Size < 10 {
		return 0, 0, v.r.errorf(p.Offset, "VP8 chunk of %d bytes", p.Size)
	}
	if _, err := io.ReadFull(src, b[:]); err != nil {
		return 0, 0, v.r.readErr(err)
	}
	tag := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	keyFrame, version, show, first := tag&1 == 0, tag>>1&7, tag>>4&1 == 1, int64(tag>>5)
	switch {
	case !keyFrame:
		return 0, 0, v.r.errorf(p.Offset, "VP8 bitstream that is not a key frame")
	case version > 3 || !show:
		return 0, 0, v.r.errorf(p.Offset, "VP8 frame header (version %d, shown %v)", version, show)
	case b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a:
		return 0, 0, v.r.errorf(p.Offset, "VP8 start code missing")
	case first == 0 || 10+first > p.Size:
		return 0, 0, v.r.errorf(p.Offset, "VP8 first partition of %d bytes in a %d-byte chunk", first, p.Size)
	}
	w := int(binary.LittleEndian.Uint16(b[6:8]) & 0x3fff)
	h := int(binary.LittleEndian.Uint16(b[8:10]) & 0x3fff)
	if w == 0 || h == 0 {
		return 0, 0, v.r.errorf(p.Offset, "VP8 frame of %dx%d pixels", w, h)
	}
	return w, h, nil
}

// webpAlpha checks an ALPH chunk's header byte.
func (v *validation) webpAlpha(p *Part, src io.Reader) error {
	var b [1]byte
	if p.Size < 1 {
		return v.r.errorf(p.Offset, "empty ALPH chunk")
	}
	if _, err := io.ReadFull(src, b[:]); err != nil {
		return v.r.readErr(err)
	}
	if b[0]&3 > 1 || b[0]>>4&3 > 1 || b[0]>>6 != 0 {
		return v.r.errorf(p.Offset, "ALPH header 0x%02X", b[0])
	}
	return nil
}

// webpFrame checks an ANMF chunk: its place on the canvas and the chunks
// inside, one bitstream of the frame's size with an optional ALPH first.
func (v *validation) webpFrame(p *Part, canvasW, canvasH int) error {
	var h [16]byte
	if p.Size < 16+8 {
		return v.r.errorf(p.Offset, "ANMF chunk of %d bytes", p.Size)
	}
	if _, err := io.ReadFull(v.r, h[:]); err != nil {
		return v.r.readErr(err)
	}
	u24 := func(b []byte) int { return int(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16) }
	x, y := 2*u24(h[0:]), 2*u24(h[3:])
	w, hh := u24(h[6:])+1, u24(h[9:])+1
	if x+w > canvasW || y+hh > canvasH {
		return v.r.errorf(p.Offset, "frame %dx%d at %d,%d outside the %dx%d canvas", w, hh, x, y, canvasW, canvasH)
	}
	left := p.Size - 16
	images, alph := 0, false
	for left > 0 {
		off := p.Offset + 8 + p.Size - left
		if left < 8 {
			return v.r.errorf(off, "a chunk header crosses the end of the frame")
		}
		var ch [8]byte
		if _, err := io.ReadFull(v.r, ch[:]); err != nil {
			return v.r.readErr(err)
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		pad := size & 1
		if 8+size+pad > left {
			return v.r.errorf(off, "chunk %q overruns its frame", ch[:4])
		}
		sub := &Part{Format: WebP, Type: string(ch[:4]), Offset: off, Header: ch[:], Size: size}
		body := io.LimitReader(v.r, size)
		switch sub.Type {
		case "VP8 ", "VP8L":
			if images > 0 || (sub.Type == "VP8L" && alph) {
				return v.r.errorf(off, "a second bitstream in a frame")
			}
			images++
			fw, fh, err := v.webpBitstream(sub, body)
			if err != nil {
				return err
			}
			if fw != w || fh != hh {
				return v.r.errorf(off, "a %dx%d bitstream in a %dx%d frame", fw, fh, w, hh)
			}
		case "ALPH":
			if images > 0 || alph {
				return v.r.errorf(off, "ALPH out of place in a frame")
			}
			alph = true
			if err := v.webpAlpha(sub, body); err != nil {
				return err
			}
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		if pad == 1 {
			if _, err := io.ReadFull(v.r, ch[:1]); err != nil {
				return v.r.readErr(err)
			}
		}
		left -= 8 + size + pad
	}
	if images != 1 {
		return v.r.errorf(p.Offset, "a frame without an image bitstream")
	}
	return nil
}
