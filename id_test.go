package imaged

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// ValidID is uuid's reading of the canonical form: s parses as a UUID and
// is what String writes of it.
func validIDByUUID(s string) bool {
	u, err := uuid.Parse(s)
	return len(s) == 36 && err == nil && u.String() == s
}

func TestValidID(t *testing.T) {
	id := NewID()
	for _, c := range []struct {
		s    string
		want bool
	}{
		{id, true},
		{"01a24257-ef3e-7784-8666-61fc9f70cab5", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{strings.ToUpper(id), false},
		{"{" + id[1:35] + "}", false},
		{"urn:uuid:" + id, false},
		{strings.ReplaceAll(id, "-", ""), false},
		{id[:35], false},
		{id + "0", false},
		{id[:8] + "_" + id[9:], false},
		{id[:35] + "g", false},
		{"", false},
		{"models", false},
	} {
		if got := ValidID(c.s); got != c.want || got != validIDByUUID(c.s) {
			t.Errorf("ValidID(%q) = %v, want %v (uuid: %v)", c.s, got, c.want, validIDByUUID(c.s))
		}
	}
	if n := testing.AllocsPerRun(100, func() { ValidID(id) }); n != 0 {
		t.Errorf("ValidID allocates %v times", n)
	}
}

func FuzzValidID(f *testing.F) {
	f.Add(NewID())
	f.Add("01a24257-ef3e-7784-8666-61fc9f70cab5")
	f.Add("01A24257-ef3e-7784-8666-61fc9f70cab5")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidID(s), validIDByUUID(s); got != want {
			t.Fatalf("ValidID(%q) = %v, uuid says %v", s, got, want)
		}
	})
}
