package telemetry_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/telemetry"
)

// Requests are counted in one series per route, method and status, however
// often they come; a method the service does not know is "other", so that
// invented methods cannot add series without end.
func TestRequestSeries(t *testing.T) {
	tel := telemetry.New()
	for range 3 {
		tel.RequestStarted()
		tel.RequestDone("GET /cdn/{key}", "GET", 200, time.Millisecond, 0, 10)
	}
	for _, m := range []string{"FOO", "BAR", "get"} {
		tel.RequestStarted()
		tel.RequestDone("/", m, 404, time.Millisecond, 0, 0)
	}
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "imaged_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			got = append(got, strings.Join(l, ",")+" "+strconv.FormatUint(m.GetHistogram().GetSampleCount(), 10))
		}
	}
	wantSeries := map[string]bool{"code=200,method=GET,route=/cdn/{key} 3": true, "code=404,method=other,route=unmatched 3": true}
	if len(got) != len(wantSeries) {
		t.Errorf("series %q, want %d", got, len(wantSeries))
	}
	for _, g := range got {
		if !wantSeries[g] {
			t.Errorf("series %q; want %v", g, wantSeries)
		}
	}
}
