package render

import (
	"fmt"
	"os"
	"testing"
)

// The test binary doubles as the render worker of the isolated pool's tests:
// run with IMAGED_RENDER_TEST_WORKER=1 it serves the worker protocol.
func TestMain(m *testing.M) {
	if os.Getenv("IMAGED_RENDER_TEST_WORKER") == "1" {
		if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "render worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
