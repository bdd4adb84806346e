package jsonappend

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// hostile are strings whose encoding differs from their bytes.
var hostile = []string{
	"", "plain", `"quoted" \back\slash`, "<script>&amp;</script>",
	"\x00\x01\x1f\x7f \b\f\n\r\t", "caf\u00e9 \u65e5\u672c \U0001F600",
	"\u2028line\u2029para", "bad \xff\xfe utf8 \xc3", "\xed\xa0\x80 surrogate",
	"ends in half \xe2\x80", strings.Repeat("a<", 100),
}

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range hostile {
		checkString(t, s)
	}
}

func TestNumbersAndKeys(t *testing.T) {
	for _, n := range []int64{0, -1, 42, math.MaxInt64, math.MinInt64} {
		want, _ := json.Marshal(n)
		if got := Int(nil, n); string(got) != string(want) {
			t.Errorf("Int(%d) = %s, want %s", n, got, want)
		}
	}
	for _, b := range []bool{true, false} {
		want, _ := json.Marshal(b)
		if got := Bool(nil, b); string(got) != string(want) {
			t.Errorf("Bool(%v) = %s, want %s", b, got, want)
		}
	}
	got := Key([]byte("{"), "a")
	got = Int(got, 1)
	got = Key(got, "b<")
	got = append(Bool(got, true), '}')
	want, _ := json.Marshal(map[string]any{"a": 1, "b<": true})
	if string(got) != string(want) {
		t.Errorf("object = %s, want %s", got, want)
	}
}

func TestConcatMatchesEncodingJSON(t *testing.T) {
	for _, a := range hostile {
		for _, b := range hostile {
			checkConcat(t, a, b)
		}
	}
	// A UTF-8 sequence split between the two halves is one rune.
	checkConcat(t, "caf\xc3", "\xa9")
	checkConcat(t, "\xf0\x9f", "\x98\x80!")
}

func FuzzString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		checkString(t, a)
		checkConcat(t, a, b)
	})
}

func checkConcat(t *testing.T, a, b string) {
	want, err := json.Marshal(a + b)
	if err != nil {
		t.Fatal(err)
	}
	if got := Concat(nil, a, b); string(got) != string(want) {
		t.Errorf("Concat(%q, %q) = %s, want %s", a, b, got, want)
	}
}

func checkString(t *testing.T, s string) {
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := String(nil, s); string(got) != string(want) {
		t.Errorf("String(%q) = %s, want %s", s, got, want)
	}
}
