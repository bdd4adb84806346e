package provenance

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"time"
)

// IPTC's digital source types (http://cv.iptc.org/newscodes/digitalsourcetype/).
const (
	TrainedAlgorithmicMedia = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
	CompositeSynthetic      = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"
	// CompositeWithTrainedAlgorithmicMedia is an edit of an existing
	// image by a generative model.
	CompositeWithTrainedAlgorithmicMedia = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
	AlgorithmicMedia                     = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
	digitalSourceTypePrefix              = "http://cv.iptc.org/newscodes/digitalsourcetype/"
	nsIptc4xmpExt                        = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
	nsXMP                                = "http://ns.adobe.com/xap/1.0/"
	nsXMPMM                              = "http://ns.adobe.com/xap/1.0/mm/"
	nsDCTerms                            = "http://purl.org/dc/terms/"
	xmpDigitalSourceTypeName             = "DigitalSourceType"
)

// Agent is the software that made an image: the service, and the provider
// and model that generated it.
type Agent struct {
	Name     string // "imaged"
	Version  string
	Provider string // "openai", "builtin", ...
	Model    string
}

func (a Agent) creatorTool() string {
	s := a.Name
	if a.Version != "" {
		s += " " + a.Version
	}
	return s
}

// xmpPacket is the XMP mark of a generated image: the IPTC digital source
// type, the AI system (provider) and its version (model) per IPTC 2025.1,
// the creator tool and creation time, and, when a C2PA manifest is
// embedded, its JUMBF URI in dcterms:provenance.
func xmpPacket(sourceType string, a Agent, created time.Time, manifestURI string) []byte {
	var b bytes.Buffer
	b.WriteString("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n")
	b.WriteString("<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n")
	b.WriteString(" <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n")
	b.WriteString("  <rdf:Description rdf:about=\"\"\n")
	b.WriteString("    xmlns:Iptc4xmpExt=\"" + nsIptc4xmpExt + "\"\n")
	b.WriteString("    xmlns:xmp=\"" + nsXMP + "\"\n")
	b.WriteString("    xmlns:dcterms=\"" + nsDCTerms + "\"\n")
	attr := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString("    " + name + "=\"")
		xml.EscapeText(&b, []byte(value))
		b.WriteString("\"\n")
	}
	attr("Iptc4xmpExt:DigitalSourceType", sourceType)
	attr("Iptc4xmpExt:AISystemUsed", a.Provider)
	attr("Iptc4xmpExt:AISystemVersionUsed", a.Model)
	attr("xmp:CreatorTool", a.creatorTool())
	attr("xmp:CreateDate", created.UTC().Format(time.RFC3339))
	attr("dcterms:provenance", manifestURI)
	b.WriteString("  />\n </rdf:RDF>\n</x:xmpmeta>\n")
	// Room to edit the packet in place, as XMP recommends.
	b.WriteString(strings.Repeat(strings.Repeat(" ", 99)+"\n", 10))
	b.WriteString("<?xpacket end=\"w\"?>")
	return b.Bytes()
}

// xmpDigitalSourceType returns the Iptc4xmpExt:DigitalSourceType of an XMP
// packet, or "".
func xmpDigitalSourceType(packet []byte) string {
	return xmpProperty(packet, nsIptc4xmpExt, xmpDigitalSourceTypeName)
}

// xmpProperty returns the simple property name of namespace ns in an XMP
// packet, written as an attribute or as an element, or "".
func xmpProperty(packet []byte, ns, name string) string {
	d := xml.NewDecoder(bytes.NewReader(packet))
	d.Strict = false
	for range 10000 { // a packet is small; bound the walk all the same
		tok, err := d.Token()
		if err == io.EOF || err != nil {
			return ""
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Space == ns && se.Name.Local == name {
			var v string
			if err := d.DecodeElement(&v, &se); err != nil {
				return ""
			}
			return strings.TrimSpace(v)
		}
		for _, at := range se.Attr {
			if at.Name.Space == ns && at.Name.Local == name {
				return strings.TrimSpace(at.Value)
			}
		}
	}
	return ""
}
