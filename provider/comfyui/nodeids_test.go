package comfyui

import (
	"slices"
	"testing"
)

func TestNodeIDsInIDOrder(t *testing.T) {
	m := map[string]int{"10": 0, "9": 0, "2": 0, "b": 0, "10:3": 0, "a": 0}
	want := []string{"2", "9", "10", "10:3", "a", "b"}
	for range 20 { // map order varies; the answer must not
		if got := nodeIDs(m); !slices.Equal(got, want) {
			t.Fatalf("nodeIDs = %q, want %q", got, want)
		}
	}
}
