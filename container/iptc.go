package container

import (
	"encoding/binary"
	"errors"
)

// IPTC-IIM datasets of the application record (2) that locate a person or
// tell how to reach them.
var privateIPTC = map[byte]string{
	26:  "Content Location Code",
	27:  "Content Location Name",
	90:  "City",
	92:  "Sub-location",
	95:  "Province/State",
	100: "Country Code",
	101: "Country Name",
	118: "Contact",
}

const photoshopSignature = "Photoshop 3.0\x00"

var errIPTC = errors.New("container: malformed Photoshop resources")

// scrubPhotoshop returns a JPEG APP13 payload (Photoshop image resources)
// whose IPTC-NAA resource has lost its private datasets, and whether
// anything was removed. The IPTC digest resource goes with any change, as
// it would no longer match.
func scrubPhotoshop(payload []byte) ([]byte, bool, error) {
	if len(payload) < len(photoshopSignature) || string(payload[:len(photoshopSignature)]) != photoshopSignature {
		return nil, false, errIPTC
	}
	b := payload[len(photoshopSignature):]
	out := append([]byte(nil), photoshopSignature...)
	removed := false
	for len(b) > 0 {
		if len(b) < 7 || string(b[:4]) != "8BIM" {
			return nil, false, errIPTC
		}
		id := binary.BigEndian.Uint16(b[4:])
		nameLen := 1 + int(b[6])
		nameLen += nameLen & 1
		if len(b) < 6+nameLen+4 {
			return nil, false, errIPTC
		}
		size := int(binary.BigEndian.Uint32(b[6+nameLen:]))
		start := 6 + nameLen + 4
		if size < 0 || len(b) < start+size {
			return nil, false, errIPTC
		}
		end := start + size + size&1
		if end > len(b) {
			end = len(b)
		}
		data := b[start : start+size]
		res := b[:end]
		switch id {
		case 0x0404:
			clean, changed, err := scrubIPTC(data)
			if err != nil {
				return nil, false, err
			}
			if changed {
				removed = true
				res = append([]byte(nil), b[:6+nameLen]...)
				res = binary.BigEndian.AppendUint32(res, uint32(len(clean)))
				res = append(res, clean...)
				if len(clean)&1 == 1 {
					res = append(res, 0)
				}
			}
		case 0x0425:
			// The IPTC digest; dropped, but only used if something changed.
			b = b[end:]
			continue
		}
		out = append(out, res...)
		b = b[end:]
	}
	if !removed {
		return payload, false, nil
	}
	return out, true, nil
}

// scrubIPTC drops the private datasets of an IPTC-IIM stream.
func scrubIPTC(b []byte) ([]byte, bool, error) {
	var out []byte
	removed := false
	for len(b) > 0 {
		if b[0] != 0x1c {
			// Padding at the end of the stream is common; anything else is not.
			for _, c := range b {
				if c != 0 {
					return nil, false, errIPTC
				}
			}
			break
		}
		if len(b) < 5 {
			return nil, false, errIPTC
		}
		record, dataset := b[1], b[2]
		size, head := int(binary.BigEndian.Uint16(b[3:])), 5
		if size&0x8000 != 0 { // extended dataset: the length of the length
			n := size & 0x7fff
			if n > 4 || len(b) < 5+n {
				return nil, false, errIPTC
			}
			size = 0
			for _, c := range b[5 : 5+n] {
				size = size<<8 | int(c)
			}
			head += n
		}
		if size < 0 || len(b) < head+size {
			return nil, false, errIPTC
		}
		if _, private := privateIPTC[dataset]; private && record == 2 {
			removed = true
		} else {
			out = append(out, b[:head+size]...)
		}
		b = b[head+size:]
	}
	return out, removed, nil
}
