package provenance

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// JUMBF (ISO 19566-5) boxes: a superbox "jumb" holds a description box
// "jumd" (a type UUID, toggles, a label) and then content boxes or further
// superboxes. C2PA types its boxes with UUIDs that spell a four-letter code
// followed by the ISO base suffix 0011-0010-8000-00AA00389B71.

func jumbfType(code string) [16]byte {
	var u [16]byte
	copy(u[:4], code)
	b, _ := hex.DecodeString("00110010800000AA00389B71")
	copy(u[4:], b)
	return u
}

var (
	typeStore      = jumbfType("c2pa") // the manifest store
	typeManifest   = jumbfType("c2ma") // a standard manifest
	typeAssertions = jumbfType("c2as") // a manifest's assertion store
	typeClaim      = jumbfType("c2cl")
	typeSignature  = jumbfType("c2cs")
	typeCBOR       = jumbfType("cbor") // an assertion with one CBOR content box
)

// box returns a box of type typ around payload.
func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	copy(b[4:], typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// superboxPayload is what a superbox holds after its header: the
// description box (requestable, labelled) and the children. C2PA hashes an
// assertion over this payload.
func superboxPayload(uuid [16]byte, label string, children ...[]byte) []byte {
	d := make([]byte, 0, 16+1+len(label)+1)
	d = append(d, uuid[:]...)
	d = append(d, 0x03) // toggles: requestable, label present
	d = append(d, label...)
	d = append(d, 0)
	p := box("jumd", d)
	for _, c := range children {
		p = append(p, c...)
	}
	return p
}

func superbox(uuid [16]byte, label string, children ...[]byte) []byte {
	return box("jumb", superboxPayload(uuid, label, children...))
}

// jumbfBox is a parsed superbox: its type, label, the payload after its
// header, and its children (superboxes, or content boxes with a type).
type jumbfBox struct {
	uuid     [16]byte
	label    string
	raw      []byte // the whole box
	payload  []byte // raw minus the header
	children []jumbfBox
	content  []contentBox
}

type contentBox struct {
	typ  string
	data []byte
}

var errJUMBF = errors.New("provenance: malformed JUMBF")

// parseBoxes splits b into boxes (type, whole box).
func parseBoxes(b []byte) ([]contentBox, [][]byte, error) {
	var boxes []contentBox
	var raws [][]byte
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, nil, errJUMBF
		}
		n := binary.BigEndian.Uint32(b)
		if n < 8 || uint64(n) > uint64(len(b)) { // 0 and 1 (to the end, 64-bit) are not used by C2PA
			return nil, nil, errJUMBF
		}
		boxes = append(boxes, contentBox{typ: string(b[4:8]), data: b[8:n]})
		raws = append(raws, b[:n])
		b = b[n:]
	}
	return boxes, raws, nil
}

// parseSuperbox parses one jumb superbox and, depth levels down, its children.
func parseSuperbox(raw []byte, depth int) (jumbfBox, error) {
	boxes, raws, err := parseBoxes(raw)
	if err != nil || len(boxes) != 1 || boxes[0].typ != "jumb" {
		return jumbfBox{}, errJUMBF
	}
	sb := jumbfBox{raw: raws[0], payload: boxes[0].data}
	inner, innerRaw, err := parseBoxes(sb.payload)
	if err != nil || len(inner) == 0 || inner[0].typ != "jumd" {
		return jumbfBox{}, errJUMBF
	}
	d := inner[0].data
	if len(d) < 17 {
		return jumbfBox{}, errJUMBF
	}
	copy(sb.uuid[:], d)
	if d[16]&0x02 != 0 {
		l := d[17:]
		for i, c := range l {
			if c == 0 {
				sb.label = string(l[:i])
				break
			}
		}
	}
	for i, c := range inner[1:] {
		if c.typ == "jumb" && depth > 0 {
			child, err := parseSuperbox(innerRaw[i+1], depth-1)
			if err != nil {
				return jumbfBox{}, err
			}
			sb.children = append(sb.children, child)
		} else {
			sb.content = append(sb.content, c)
		}
	}
	return sb, nil
}

func (b jumbfBox) child(label string) (jumbfBox, bool) {
	for _, c := range b.children {
		if c.label == label {
			return c, true
		}
	}
	return jumbfBox{}, false
}

// cbor returns the data of the box's first CBOR content box.
func (b jumbfBox) cbor() ([]byte, bool) {
	for _, c := range b.content {
		if c.typ == "cbor" {
			return c.data, true
		}
	}
	return nil, false
}
