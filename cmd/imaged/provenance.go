package main

import (
	"errors"
	"log/slog"

	"github.com/imaged/imaged/provenance"
)

// newMarker returns what marks generated images: the XMP mark always, and
// C2PA manifests signed with the operator's certificate, or with a
// development certificate kept in the data directory, unless IMAGED_C2PA is
// off.
func newMarker(cfg *config, log *slog.Logger) (*provenance.Marker, error) {
	pc := provenance.Config{Version: version}
	switch {
	case !cfg.C2PA:
		log.Info("C2PA signing is off; generated images carry the XMP mark only")
	case (cfg.C2PACertFile == "") != (cfg.C2PAKeyFile == ""):
		return nil, errors.New("set both IMAGED_C2PA_CERT_FILE and IMAGED_C2PA_KEY_FILE, or neither")
	case cfg.C2PACertFile != "":
		creds, err := provenance.LoadCredentials(cfg.C2PACertFile, cfg.C2PAKeyFile)
		if err != nil {
			return nil, err
		}
		pc.Credentials = creds
		log.Info("signing C2PA manifests", "subject", creds.Chain[0].Subject.String(), "expires", creds.Chain[0].NotAfter)
	default:
		creds, err := provenance.DevelopmentCredentials(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		pc.Credentials = creds
		log.Warn("signing C2PA manifests with the development certificate of the data directory; validators report it as untrusted until IMAGED_C2PA_CERT_FILE and IMAGED_C2PA_KEY_FILE name a real one")
	}
	return provenance.New(pc), nil
}
