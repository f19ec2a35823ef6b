package validate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Paths relative to this folder, where `go test` runs.
const (
	repoRoot      = "../.."
	deployDir     = ".."
	dockerfile    = "../Dockerfile"
	composeFile   = "../compose.yaml"
	k8sDir        = "../k8s"
	rulesFile     = "../prometheus/callpub-rules.yaml"
	dashboardFile = "../grafana/callpub.json"
)

// binDir holds callpub and ccms-sim built once per test binary with the
// Dockerfile's own `go build` command (see buildBinaries). Building them once
// serves both the Dockerfile test and the --help lookups.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "callpub-deploy-validate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testVersion is substituted for ${VERSION} in the Dockerfile's build command.
const testVersion = "v0.0.0-validate"

var built = sync.OnceValues(func() (string, error) {
	cmd, err := dockerBuildCommand(dockerfile)
	if err != nil {
		return "", err
	}
	return cmd.String(), cmd.run(binDir)
})

// binary returns the path of a binary built by the Dockerfile's command.
func binary(t *testing.T, name string) string {
	t.Helper()
	if _, err := built(); err != nil {
		t.Fatalf("build with the Dockerfile's command: %v", err)
	}
	p := filepath.Join(binDir, name)
	if runtime.GOOS == "windows" {
		p += ".exe"
	}
	return p
}

// helpOutput runs `<bin> --help` and returns stdout and stderr together.
func helpOutput(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), binary(t, bin), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	return string(out)
}

var (
	callpubVarRE = regexp.MustCompile(`(?m)^\s+(CALLPUB_[A-Z0-9_]+)\s+.*\[(.*)\]$`)
	simVarRE     = regexp.MustCompile(`(?m)^\s+-[a-z-]+\s+(CCMS_SIM_[A-Z0-9_]+)\s*$`)
)

// callpubVars maps every variable `callpub --help` lists to its default as
// printed ("required" and "unset" included).
func callpubVars(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, m := range callpubVarRE.FindAllStringSubmatch(helpOutput(t, "callpub"), -1) {
		vars[m[1]] = m[2]
	}
	if len(vars) < 20 {
		t.Fatalf("callpub --help lists %d variables; the help format changed? %v", len(vars), vars)
	}
	return vars
}

// simVars lists every variable `ccms-sim --help` names.
func simVars(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	for _, m := range simVarRE.FindAllStringSubmatch(helpOutput(t, "ccms-sim"), -1) {
		vars[m[1]] = true
	}
	if len(vars) < 5 {
		t.Fatalf("ccms-sim --help lists %d variables; the help format changed?", len(vars))
	}
	return vars
}

// runtimeVars are read by the Go runtime, not by callpub's config.
var runtimeVars = []string{"GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "GOGC"}

// unknownCallpubVar returns "" when name is a variable callpub reads (or its
// NAME_FILE form, or a Go runtime variable), else a reason.
func unknownCallpubVar(known map[string]string, name string) string {
	if _, ok := known[name]; ok || slices.Contains(runtimeVars, name) {
		return ""
	}
	if base, ok := strings.CutSuffix(name, "_FILE"); ok {
		if _, ok := known[base]; ok {
			return ""
		}
	}
	return fmt.Sprintf("%s is not a variable callpub reads (see callpub --help)", name)
}
