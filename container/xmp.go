package container

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// XMP properties that locate a person or identify their device, by
// namespace; "*" ends a prefix match of the local name.
var privateXMP = map[string][]string{
	"http://ns.adobe.com/exif/1.0/":                        {"GPS*", "SubjectLocation"},
	"http://cipa.jp/exif/1.0/":                             {"BodySerialNumber", "LensSerialNumber", "CameraOwnerName"},
	"http://ns.adobe.com/exif/1.0/aux/":                    {"SerialNumber", "LensSerialNumber", "OwnerName"},
	"http://ns.adobe.com/photoshop/1.0/":                   {"City", "State", "Country"},
	"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/":          {"Location", "CountryCode", "CreatorContactInfo"},
	"http://iptc.org/std/Iptc4xmpExt/2008-02-29/":          {"LocationCreated", "LocationShown"},
	"http://www.metadataworkinggroup.com/schemas/regions/": {"*"}, // face regions, with people's names
}

func privateXMPName(space, local string) bool {
	for _, p := range privateXMP[space] {
		if p == local || strings.HasSuffix(p, "*") && strings.HasPrefix(local, p[:len(p)-1]) {
			return true
		}
	}
	return false
}

var errXMP = errors.New("container: malformed XMP")

// scrubXMP returns an XMP packet without the private properties (as
// elements or as attributes), and whether anything was removed. Everything
// else, the provenance properties among it (Iptc4xmpExt:DigitalSourceType),
// is written back token for token: prefixes, order and spacing kept.
func scrubXMP(packet []byte) ([]byte, bool, error) {
	d := xml.NewDecoder(bytes.NewReader(packet))
	d.Strict = true
	var out bytes.Buffer
	out.Grow(len(packet))
	// Namespace scopes: prefix -> URI, one map per open element.
	scopes := []map[string]string{{"xml": "http://www.w3.org/XML/1998/namespace"}}
	resolve := func(prefix string) string {
		for i := len(scopes) - 1; i >= 0; i-- {
			if u, ok := scopes[i][prefix]; ok {
				return u
			}
		}
		return ""
	}
	removed, skip := false, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, errXMP
		}
		switch t := tok.(type) {
		case xml.StartElement:
			scope := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					scope[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					scope[""] = a.Value
				}
			}
			scopes = append(scopes, scope)
			if skip > 0 {
				skip++
				continue
			}
			if privateXMPName(resolve(t.Name.Space), t.Name.Local) {
				removed, skip = true, 1
				continue
			}
			out.WriteByte('<')
			writeXMLName(&out, t.Name)
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && a.Name.Space != "" && privateXMPName(resolve(a.Name.Space), a.Name.Local) {
					removed = true
					continue
				}
				out.WriteByte(' ')
				writeXMLName(&out, a.Name)
				out.WriteString(`="`)
				escapeXML(&out, a.Value, true)
				out.WriteByte('"')
			}
			out.WriteByte('>')
		case xml.EndElement:
			if len(scopes) < 2 {
				return nil, false, errXMP
			}
			scopes = scopes[:len(scopes)-1]
			if skip > 0 {
				skip--
				continue
			}
			out.WriteString("</")
			writeXMLName(&out, t.Name)
			out.WriteByte('>')
		case xml.CharData:
			if skip == 0 {
				escapeXML(&out, string(t), false)
			}
		case xml.Comment:
			if skip == 0 {
				out.WriteString("<!--")
				out.Write(t)
				out.WriteString("-->")
			}
		case xml.ProcInst:
			out.WriteString("<?")
			out.WriteString(t.Target)
			if len(t.Inst) > 0 {
				out.WriteByte(' ')
				out.Write(t.Inst)
			}
			out.WriteString("?>")
		case xml.Directive:
			out.WriteString("<!")
			out.Write(t)
			out.WriteByte('>')
		}
	}
	if !removed {
		return packet, false, nil
	}
	return out.Bytes(), true, nil
}

func writeXMLName(b *bytes.Buffer, n xml.Name) {
	if n.Space != "" {
		b.WriteString(n.Space)
		b.WriteByte(':')
	}
	b.WriteString(n.Local)
}

// escapeXML writes s with the characters that must be escaped escaped:
// & and < always, > for safety, and in attributes " and the white space
// that attribute normalisation would otherwise change.
func escapeXML(b *bytes.Buffer, s string, attr bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case attr && c == '"':
			b.WriteString("&quot;")
		case attr && c == '\n':
			b.WriteString("&#xA;")
		case attr && c == '\r':
			b.WriteString("&#xD;")
		case attr && c == '\t':
			b.WriteString("&#x9;")
		case c == '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteByte(c)
		}
	}
}
