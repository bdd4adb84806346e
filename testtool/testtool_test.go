package testtool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleRootHoldsGoMod(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/imaged/imaged\n") {
		t.Fatalf("ModuleRoot found another module: %q", strings.SplitN(string(b), "\n", 2)[0])
	}
}

func TestNodeResolvesToolPackages(t *testing.T) {
	cmd := Node(t, []string{"standardwebhooks"}, "-e", "require('standardwebhooks'); console.log('ok')")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node could not load a tools/node package: %v\n%s", err, out)
	}
}
