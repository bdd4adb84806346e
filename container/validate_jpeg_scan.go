package container

import (
	"io"
)

// huffTable decodes one Huffman table: codes of up to 8 bits through a
// lookup table, longer ones by the canonical code ranges.
type huffTable struct {
	lut     [256]uint16 // value | length<<8 for codes of at most 8 bits; 0: longer
	maxCode [17]int32   // largest code of each length, -1 if none
	valPtr  [17]int32   // index in vals of the first code of each length
	minCode [17]int32
	vals    []byte
}

// newHuffTable builds a table from the code counts per length (1-16) and
// the values; it fails if the counts do not form a prefix code.
func newHuffTable(counts [16]int, vals []byte) (*huffTable, bool) {
	t := &huffTable{vals: append([]byte(nil), vals...)}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.valPtr[l], t.minCode[l] = k, code
		if n == 0 {
			t.maxCode[l] = -1
		} else {
			t.maxCode[l] = code + n - 1
			if t.maxCode[l] >= 1<<l {
				return nil, false
			}
			if l <= 8 {
				for c := code; c < code+n; c++ {
					base := c << (8 - l)
					for i := int32(0); i < 1<<(8-l); i++ {
						t.lut[base+i] = uint16(vals[k+c-code]) | uint16(l)<<8
					}
				}
			}
		}
		code, k = (code+n)<<1, k+n
	}
	return t, true
}

// scanBits reads the bits of entropy-coded data, undoing the byte
// stuffing, and stops at a restart marker.
type scanBits struct {
	in     *byteReader
	acc    uint64 // bits, most significant first, in the top n bits
	n      uint   // bits in acc
	real   uint   // of which come from the data (the rest is padding)
	marker bool   // a restart marker is next in the data
	eof    bool
	err    error
}

// fill tops acc up to at least 57 bits, padding with zeros past a marker
// or the end of the data, as decoders do.
func (b *scanBits) fill() {
	for b.n <= 56 {
		var c byte
		if !b.marker && !b.eof {
			var err error
			c, err = b.in.ReadByte()
			if err == io.EOF {
				b.eof = true
				c = 0
			} else if err != nil {
				b.err, b.eof = err, true
				c = 0
			} else if c == 0xff {
				c2, err := b.in.ReadByte()
				switch {
				case err != nil:
					b.eof = true
					if err != io.EOF {
						b.err = err
					}
					c = 0
				case c2 == 0x00:
				case c2 >= 0xd0 && c2 <= 0xd7:
					b.marker = true
					c = 0
				case c2 == 0xff:
					// Fill bytes before a marker: the reader ends the data at
					// the marker itself.
					b.in.r--
					c = 0
					continue
				}
			}
			if !b.marker && !b.eof {
				b.acc |= uint64(c) << (56 - b.n)
				b.n += 8
				b.real += 8
				continue
			}
		}
		b.n += 8 // zero padding
	}
}

// bits reads k bits (k <= 16); ok is false when they run past the data.
func (b *scanBits) bits(k uint) (uint32, bool) {
	if b.n < k {
		b.fill()
	}
	if k > b.real {
		return 0, false
	}
	v := uint32(b.acc >> (64 - k))
	b.acc <<= k
	b.n -= k
	b.real -= k
	return v, true
}

// decode reads one Huffman-coded value.
func (b *scanBits) decode(t *huffTable) (byte, bool) {
	if b.n < 16 {
		b.fill()
	}
	if e := t.lut[b.acc>>56]; e != 0 {
		l := uint(e >> 8)
		if l > b.real {
			return 0, false
		}
		b.acc <<= l
		b.n -= l
		b.real -= l
		return byte(e), true
	}
	for l := uint(9); l <= 16; l++ {
		code := int32(b.acc >> (64 - l))
		if code <= t.maxCode[l] {
			if l > b.real {
				return 0, false
			}
			b.acc <<= l
			b.n -= l
			b.real -= l
			return t.vals[t.valPtr[l]+code-t.minCode[l]], true
		}
	}
	return 0, false
}

// restart moves past a restart marker: the bits left before it must be
// padding of the last byte.
func (b *scanBits) restart() bool {
	if b.n < 8 {
		b.fill()
	}
	if b.real >= 8 || !b.marker {
		return false
	}
	b.acc, b.n, b.real, b.marker = 0, 0, 0, false
	return true
}

// jpegScanData decodes the entropy-coded data of a scan to its end without
// keeping any coefficient: the number of blocks must be exactly what the
// frame and scan headers call for, every code valid, restart markers where
// the interval puts them. Refinement scans of progressive AC coefficients
// depend on every earlier coefficient and are only checked for structure.
func (v *validation) jpegScanData(p *Part, f *jpegFrame, s *jpegScan) error {
	if s == nil {
		return v.r.errorf(p.Offset, "entropy-coded data without a scan")
	}
	in := newByteReader(v.r)
	if s.ah > 0 && s.ss > 0 {
		n, err := io.Copy(io.Discard, in)
		if err != nil {
			return err
		}
		if n == 0 {
			return v.r.errorf(p.Offset, "an empty scan")
		}
		return nil
	}
	b := &scanBits{in: in}
	fail := func(what string) error {
		if b.err != nil {
			return b.err
		}
		return v.r.errorf(v.r.Offset(), "%s in the scan's entropy-coded data", what)
	}
	// Blocks per MCU and MCUs per scan.
	type unit struct {
		comp   int
		dc, ac *huffTable
	}
	var units []unit
	var mcus int
	if len(s.comps) == 1 {
		c := f.comps[s.comps[0]]
		bw := (ceilDiv(f.width*int(c.h), f.hmax) + 7) / 8
		bh := (ceilDiv(f.height*int(c.v), f.vmax) + 7) / 8
		mcus = bw * bh
		units = []unit{{s.comps[0], s.dc[0], s.ac[0]}}
	} else {
		mcus = ceilDiv(f.width, 8*f.hmax) * ceilDiv(f.height, 8*f.vmax)
		for i, ci := range s.comps {
			c := f.comps[ci]
			for k := 0; k < int(c.h)*int(c.v); k++ {
				units = append(units, unit{ci, s.dc[i], s.ac[i]})
			}
		}
	}
	eobrun := 0
	for m := 0; m < mcus; m++ {
		if f.restart > 0 && m > 0 && m%f.restart == 0 {
			if !b.restart() {
				return fail("a missing restart marker or stray data before it")
			}
			eobrun = 0
			for i := range f.comps {
				f.comps[i].dcPred = 0
			}
		}
		for _, u := range units {
			if s.ss == 0 {
				if s.ah > 0 { // DC refinement: one bit
					if _, ok := b.bits(1); !ok {
						return fail("early end")
					}
					continue
				}
				t, ok := b.decode(u.dc)
				if !ok || t > 11 {
					return fail("an invalid DC code")
				}
				if _, ok := b.bits(uint(t)); !ok {
					return fail("early end")
				}
				if !f.progressive {
					if err := jpegAC(b, u.ac, 1, 63, nil); err != "" {
						return fail(err)
					}
				}
				continue
			}
			if err := jpegAC(b, u.ac, s.ss, s.se, &eobrun); err != "" {
				return fail(err)
			}
		}
	}
	// The scan ends here: at most the padding of its last byte remains.
	if b.n < 8 {
		b.fill()
	}
	if b.real >= 8 || b.marker || b.in.Buffered() > 0 {
		return fail("data after the last block, or an extra restart marker,")
	}
	if n, err := io.Copy(io.Discard, v.r); err != nil {
		return err
	} else if n > 0 {
		return fail("data after the last block")
	}
	return nil
}

// jpegAC decodes the AC coefficients ss..se of one block; eobrun is nil for
// a sequential scan (no end-of-band runs). It returns what is wrong, or "".
func jpegAC(b *scanBits, t *huffTable, ss, se int, eobrun *int) string {
	if eobrun != nil && *eobrun > 0 {
		*eobrun--
		return ""
	}
	for k := ss; k <= se; {
		rs, ok := b.decode(t)
		if !ok {
			return "an invalid AC code"
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r < 15 {
				if eobrun != nil {
					run := 1 << r
					if r > 0 {
						extra, ok := b.bits(uint(r))
						if !ok {
							return "early end"
						}
						run += int(extra)
					}
					*eobrun = run - 1
				} else if r != 0 {
					return "an end-of-band run in a sequential scan"
				}
				return ""
			}
			k += 16
			if k > se+1 {
				return "a zero run past the end of the block"
			}
			continue
		}
		k += r
		if k > se || s > 10 {
			return "a coefficient past the end of the block"
		}
		if _, ok := b.bits(s); !ok {
			return "early end"
		}
		k++
	}
	return ""
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
