package imaged_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

func TestCheckOptions(t *testing.T) {
	m := imaged.Model{ID: "m", Options: []imaged.ModelOption{
		{Name: "quality", Values: []string{"low", "high"}},
		{Name: "background", Values: []string{"auto", "opaque"}},
	}}
	tests := []struct {
		name    string
		model   imaged.Model
		options map[string]string
		want    string // in the message; "" for accepted
	}{
		{"none_is_accepted", m, nil, ""},
		{"known_values_are_accepted", m, map[string]string{"quality": "high", "background": "opaque"}, ""},
		{"unknown_name_lists_the_options", m, map[string]string{"size": "big"}, `no option "size"; its options: quality, background`},
		{"unknown_value_lists_the_values", m, map[string]string{"quality": "max"}, `must be one of low, high, not "max"`},
		{"model_without_options", imaged.Model{ID: "bare"}, map[string]string{"quality": "low"}, `model "bare" takes no options`},
		{"long_names_are_cut_in_the_message", m, map[string]string{strings.Repeat("x", 500): "1"}, "…"},
		{"too_many_settings", m, func() map[string]string {
			o := map[string]string{}
			for i := range 17 {
				o[strings.Repeat("k", i+1)] = "v"
			}
			return o
		}(), "more than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := imaged.CheckOptions(tt.model, tt.options)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if imaged.ErrCode(err) != imaged.EInvalidPrompt || !strings.Contains(imaged.ErrMessage(err), tt.want) {
				t.Errorf("error %v, want INVALID_IMAGE_PROMPT saying %q", err, tt.want)
			}
			if len(imaged.ErrMessage(err)) > 200 {
				t.Errorf("message of %d bytes quotes too much", len(imaged.ErrMessage(err)))
			}
		})
	}
}

func TestReportProgress(t *testing.T) {
	imaged.ReportProgress(context.Background(), 50) // nobody listens: no effect, no panic
	var got []int
	ctx := imaged.WithProgress(context.Background(), func(p int) { got = append(got, p) })
	for _, p := range []int{-5, 30, 250} {
		imaged.ReportProgress(ctx, p)
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 30 || got[2] != 100 {
		t.Errorf("heard %v, want [0 30 100]", got)
	}
}
