package container

import (
	"bytes"
	"encoding/binary"
)

// jpegComponent is a frame component.
type jpegComponent struct {
	id, h, v, tq byte
	dcPred       int32
}

// jpegFrame is what the validation knows of a JPEG while it reads it.
type jpegFrame struct {
	progressive   bool
	width, height int
	comps         []jpegComponent
	hmax, vmax    int
	quant         [4]bool
	dc, ac        [4]*huffTable
	restart       int
}

func (v *validation) jpeg() error {
	var f jpegFrame
	var sos *jpegScan
	for {
		p, err := v.next()
		if err != nil {
			return err
		}
		switch {
		case p.Type == "SOI":
		case p.Type == "EOI":
			return nil
		case p.Type == "SOF0" || p.Type == "SOF1" || p.Type == "SOF2":
			err = v.jpegSOF(p, &f)
		case p.Type == "DQT":
			err = v.jpegDQT(p, &f)
		case p.Type == "DHT":
			err = v.jpegDHT(p, &f)
		case p.Type == "DRI":
			b, err := v.r.Payload(2)
			if err != nil {
				return err
			}
			f.restart = int(binary.BigEndian.Uint16(b))
		case p.Type == "SOS":
			sos, err = v.jpegSOS(p, &f)
		case p.Type == "ECS":
			err = v.jpegScanData(p, &f, sos)
		case p.Type == "APP1":
			err = v.jpegAPP1(p)
		case p.Type == "APP2":
			err = v.jpegPrefixed(p, "icc", "ICC_PROFILE\x00")
		case p.Type == "APP11":
			err = v.jpegPrefixed(p, "c2pa", "JP")
		case p.Type == "APP13":
			err = v.jpegPrefixed(p, "iptc", "Photoshop 3.0\x00")
		case p.Type == "COM":
			err = v.metadata(p, "comment", "")
		}
		if err != nil {
			return err
		}
	}
}

// jpegPrefixed records an APPn segment of the given kind if its payload
// starts with the identifier.
func (v *validation) jpegPrefixed(p *Part, kind, ident string) error {
	b, err := v.r.br.Peek(min(int(p.Size), len(ident)))
	if err != nil {
		return v.r.readErr(err)
	}
	if string(b) != ident {
		return nil
	}
	return v.metadata(p, kind, "")
}

// jpegAPP1 records EXIF and XMP (standard and extended) segments.
func (v *validation) jpegAPP1(p *Part) error {
	const xmp, xmpExt = "http://ns.adobe.com/xap/1.0/\x00", "http://ns.adobe.com/xmp/extension/\x00"
	b, err := v.r.br.Peek(min(int(p.Size), len(xmpExt)))
	if err != nil {
		return v.r.readErr(err)
	}
	switch {
	case bytes.HasPrefix(b, []byte("Exif\x00")):
		return v.metadata(p, "exif", "")
	case bytes.HasPrefix(b, []byte(xmp)):
		return v.metadata(p, "xmp", "")
	case bytes.HasPrefix(b, []byte(xmpExt)):
		return v.metadata(p, "xmp", "extension")
	}
	return nil
}

func (v *validation) jpegSOF(p *Part, f *jpegFrame) error {
	b, err := v.r.Payload(6 + 3*4)
	if err != nil || len(b) < 6 {
		return v.r.errorf(p.Offset, "frame header of %d bytes", p.Size)
	}
	n := int(b[5])
	if b[0] != 8 {
		return v.r.errorf(p.Offset, "%d-bit samples; only 8-bit JPEGs are accepted", b[0])
	}
	if n != 1 && n != 3 && n != 4 || len(b) != 6+3*n {
		return v.r.errorf(p.Offset, "frame header with %d components in %d bytes", n, len(b))
	}
	f.progressive = p.Type == "SOF2"
	f.height, f.width = int(binary.BigEndian.Uint16(b[1:])), int(binary.BigEndian.Uint16(b[3:]))
	for i := 0; i < n; i++ {
		c := jpegComponent{id: b[6+3*i], h: b[7+3*i] >> 4, v: b[7+3*i] & 15, tq: b[8+3*i]}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return v.r.errorf(p.Offset, "component %d: sampling %dx%d, table %d", c.id, c.h, c.v, c.tq)
		}
		for _, o := range f.comps {
			if o.id == c.id {
				return v.r.errorf(p.Offset, "component %d twice", c.id)
			}
		}
		f.hmax, f.vmax = max(f.hmax, int(c.h)), max(f.vmax, int(c.v))
		f.comps = append(f.comps, c)
	}
	return v.dimensions(p, f.width, f.height)
}

func (v *validation) jpegDQT(p *Part, f *jpegFrame) error {
	b, err := v.r.Payload(4 * 129)
	if err != nil {
		return v.r.errorf(p.Offset, "DQT of %d bytes", p.Size)
	}
	for len(b) > 0 {
		pq, tq := b[0]>>4, b[0]&15
		size := 1 + 64*(1+int(pq))
		if pq > 1 || tq > 3 || len(b) < size {
			return v.r.errorf(p.Offset, "malformed quantisation table")
		}
		f.quant[tq] = true
		b = b[size:]
	}
	return nil
}

func (v *validation) jpegDHT(p *Part, f *jpegFrame) error {
	b, err := v.r.Payload(4 * (17 + 256))
	if err != nil {
		return v.r.errorf(p.Offset, "DHT of %d bytes", p.Size)
	}
	for len(b) > 0 {
		if len(b) < 17 {
			return v.r.errorf(p.Offset, "malformed Huffman table")
		}
		tc, th := b[0]>>4, b[0]&15
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(b[1+i])
			total += counts[i]
		}
		if tc > 1 || th > 3 || total == 0 || total > 256 || len(b) < 17+total {
			return v.r.errorf(p.Offset, "malformed Huffman table")
		}
		t, ok := newHuffTable(counts, b[17:17+total])
		if !ok {
			return v.r.errorf(p.Offset, "Huffman table with more codes than their lengths allow")
		}
		if tc == 0 {
			f.dc[th] = t
		} else {
			f.ac[th] = t
		}
		b = b[17+total:]
	}
	return nil
}

// jpegScan is a scan header.
type jpegScan struct {
	comps          []int // indexes into the frame's components
	dc, ac         []*huffTable
	ss, se, ah, al int
}

func (v *validation) jpegSOS(p *Part, f *jpegFrame) (*jpegScan, error) {
	b, err := v.r.Payload(1 + 2*4 + 3)
	if err != nil || len(b) < 1 {
		return nil, v.r.errorf(p.Offset, "scan header of %d bytes", p.Size)
	}
	ns := int(b[0])
	if ns < 1 || ns > len(f.comps) || len(b) != 1+2*ns+3 {
		return nil, v.r.errorf(p.Offset, "scan header with %d components in %d bytes", ns, len(b))
	}
	s := &jpegScan{ss: int(b[1+2*ns]), se: int(b[2+2*ns]), ah: int(b[3+2*ns] >> 4), al: int(b[3+2*ns] & 15)}
	for i := 0; i < ns; i++ {
		id, td, ta := b[1+2*i], b[2+2*i]>>4, b[2+2*i]&15
		idx := -1
		for j, c := range f.comps {
			if c.id == id {
				idx = j
			}
		}
		for _, k := range s.comps {
			if k == idx {
				idx = -1
			}
		}
		if idx < 0 || td > 3 || ta > 3 {
			return nil, v.r.errorf(p.Offset, "scan component %d unknown, repeated or with bad tables", id)
		}
		if !f.quant[f.comps[idx].tq] {
			return nil, v.r.errorf(p.Offset, "quantisation table %d used but not defined", f.comps[idx].tq)
		}
		s.comps = append(s.comps, idx)
		s.dc, s.ac = append(s.dc, f.dc[td]), append(s.ac, f.ac[ta])
	}
	if !f.progressive {
		if s.ss != 0 || s.se != 63 || s.ah != 0 || s.al != 0 {
			return nil, v.r.errorf(p.Offset, "sequential scan with spectral selection %d-%d", s.ss, s.se)
		}
	} else if s.se > 63 || s.ss > s.se || (s.ss == 0) != (s.se == 0) || (s.ss > 0 && ns != 1) || s.al > 13 || (s.ah != 0 && s.ah != s.al+1) {
		return nil, v.r.errorf(p.Offset, "progressive scan parameters Ss=%d Se=%d Ah=%d Al=%d", s.ss, s.se, s.ah, s.al)
	}
	for i := range s.comps {
		needDC := s.ss == 0 && s.ah == 0
		needAC := s.se > 0
		if needDC && s.dc[i] == nil || needAC && s.ac[i] == nil {
			return nil, v.r.errorf(p.Offset, "Huffman table used but not defined")
		}
	}
	for i := range f.comps {
		f.comps[i].dcPred = 0
	}
	return s, nil
}
