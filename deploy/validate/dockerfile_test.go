package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ENV, ...
	Args string
}

func parseDockerfile(path string) ([]instruction, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continuation
			continue
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out, sc.Err()
}

// shellFields splits s like a POSIX shell would for plain words and quoted
// strings (no expansion beyond what the caller substitutes).
func shellFields(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// buildCommand is the Dockerfile's `go build`, as a local command.
type buildCommand struct {
	Env  []string // from ENV in the build stage, e.g. CGO_ENABLED=0
	Args []string // after "go build", ${VERSION} substituted
}

func (c buildCommand) String() string {
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = a
		if strings.ContainsAny(a, " \t") {
			args[i] = strconv.Quote(a)
		}
	}
	return strings.Join(c.Env, " ") + " go build " + strings.Join(args, " ")
}

// run builds into dir: the Dockerfile's output folder (/out/) becomes dir.
func (c buildCommand) run(dir string) error {
	args := slices.Clone(c.Args)
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = dir + string(filepath.Separator)
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), c.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", c, err, out)
	}
	return nil
}

var envPairRE = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)`)

// dockerBuildCommand finds the one `go build` in the build stage.
func dockerBuildCommand(path string) (buildCommand, error) {
	ins, err := parseDockerfile(path)
	if err != nil {
		return buildCommand{}, err
	}
	var c buildCommand
	stage, found := "", false
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			stage = stageName(in.Args)
		case "ENV":
			if stage == "build" {
				for _, m := range envPairRE.FindAllStringSubmatch(in.Args, -1) {
					c.Env = append(c.Env, m[1]+"="+strings.Trim(m[2], `"`))
				}
			}
		case "RUN":
			_, rest, ok := strings.Cut(in.Args, "go build ")
			if !ok {
				continue
			}
			if found {
				return buildCommand{}, errors.New("more than one go build in the Dockerfile")
			}
			found = true
			if stage != "build" {
				return buildCommand{}, fmt.Errorf("go build runs in stage %q, want build", stage)
			}
			rest, _, _ = strings.Cut(rest, "&&")
			rest = strings.NewReplacer("${VERSION}", testVersion, "$VERSION", testVersion).Replace(rest)
			if c.Args, err = shellFields(rest); err != nil {
				return buildCommand{}, err
			}
		}
	}
	if !found {
		return buildCommand{}, errors.New("no go build in the Dockerfile")
	}
	return c, nil
}

// stageName returns the "AS name" of a FROM line's arguments.
func stageName(from string) string {
	f := strings.Fields(from)
	if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
		return f[len(f)-1]
	}
	return ""
}

func dockerStages(t *testing.T) map[string]bool {
	t.Helper()
	ins, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]bool{}
	for _, in := range ins {
		if in.Cmd == "FROM" {
			stages[stageName(in.Args)] = true
		}
	}
	return stages
}

func TestDockerfileBuildCommandProducesStaticBinaries(t *testing.T) {
	cmdline, err := built()
	if err != nil {
		t.Fatalf("build with the Dockerfile's command: %v", err)
	}
	t.Logf("built with: %s", cmdline)
	for _, name := range []string{"callpub", "ccms-sim"} {
		out, err := exec.CommandContext(t.Context(), "go", "version", "-m", binary(t, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m %s: %v\n%s", name, err, out)
		}
		info := string(out)
		// With -trimpath the build info leaves out -ldflags, so the stamp is
		// checked in the binary itself (TestDockerfileStampsTheVersion).
		for _, want := range []string{"build\tCGO_ENABLED=0", "build\t-trimpath=true"} {
			if !strings.Contains(info, want) {
				t.Errorf("%s build info lacks %q:\n%s", name, want, info)
			}
		}
	}
}

var versionVarRE = regexp.MustCompile(`(?m)^\s*(var\s+)?version\s*(string\s*)?=`)

func TestDockerfileStampsTheVersion(t *testing.T) {
	cmd, err := dockerBuildCommand(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(cmd.Args, "-ldflags")
	if i < 0 || i+1 >= len(cmd.Args) {
		t.Fatalf("the build command has no -ldflags: %s", cmd)
	}
	ldflags := cmd.Args[i+1]
	if !strings.Contains(ldflags, "-X main.version="+testVersion) {
		t.Fatalf("-ldflags %q does not stamp main.version from ${VERSION}", ldflags)
	}
	declared := false
	files, _ := filepath.Glob(filepath.Join(repoRoot, "cmd", "callpub", "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		declared = declared || versionVarRE.Match(b)
	}
	if !declared {
		t.Skip("cmd/callpub declares no `var version`: -X main.version is a no-op until it does")
	}
	b, err := os.ReadFile(binary(t, "callpub"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(testVersion)) {
		t.Errorf("callpub built with %s does not contain %q: is main.version a string var?", ldflags, testVersion)
	}
}

func TestDockerfileFinalStagesRunTheBuiltBinariesAsNonRoot(t *testing.T) {
	ins, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	type stage struct {
		base, user, entrypoint string
		copied                 []string
		env                    map[string]string
		expose                 []string
	}
	stages := map[string]*stage{}
	var order []string
	var cur *stage
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			name := stageName(in.Args)
			cur = &stage{base: strings.Fields(in.Args)[0], env: map[string]string{}}
			stages[name] = cur
			order = append(order, name)
		case "USER":
			cur.user = in.Args
		case "ENTRYPOINT":
			cur.entrypoint = in.Args
		case "COPY":
			f := strings.Fields(in.Args)
			cur.copied = append(cur.copied, f[len(f)-1])
		case "ENV":
			for _, m := range envPairRE.FindAllStringSubmatch(in.Args, -1) {
				cur.env[m[1]] = m[2]
			}
		case "EXPOSE":
			cur.expose = append(cur.expose, strings.Fields(in.Args)...)
		}
	}
	if got := order[len(order)-1]; got != "callpub" {
		t.Errorf("the default (last) stage is %q, want callpub", got)
	}
	vars := callpubVars(t)
	for _, tc := range []struct {
		stage, binary, port string
	}{
		{"callpub", "/callpub", "8080"},
		{"ccms-sim", "/ccms-sim", "8443"},
	} {
		s := stages[tc.stage]
		if s == nil {
			t.Errorf("no stage %q", tc.stage)
			continue
		}
		if !strings.HasPrefix(s.base, "gcr.io/distroless/static") {
			t.Errorf("stage %s is based on %s, want distroless static", tc.stage, s.base)
		}
		if s.user == "" || strings.HasPrefix(s.user, "0") || strings.HasPrefix(s.user, "root") {
			t.Errorf("stage %s runs as %q, want a non-root user", tc.stage, s.user)
		}
		if want := fmt.Sprintf("[%q]", tc.binary); s.entrypoint != want {
			t.Errorf("stage %s ENTRYPOINT %s, want %s", tc.stage, s.entrypoint, want)
		}
		if !slices.Contains(s.copied, tc.binary) {
			t.Errorf("stage %s does not copy %s", tc.stage, tc.binary)
		}
		if diff := cmp.Diff([]string{tc.port}, s.expose); diff != "" {
			t.Errorf("stage %s EXPOSE (-want +got):\n%s", tc.stage, diff)
		}
	}
	for name := range stages["callpub"].env {
		if reason := unknownCallpubVar(vars, name); reason != "" {
			t.Errorf("Dockerfile ENV: %s", reason)
		}
	}
	if got := stages["callpub"].env["CALLPUB_STATE_DIR"]; got != "/var/lib/callpub" {
		t.Errorf("CALLPUB_STATE_DIR in the image = %q, want /var/lib/callpub (the VOLUME)", got)
	}
	sim := simVars(t)
	for name := range stages["ccms-sim"].env {
		if !sim[name] {
			t.Errorf("Dockerfile ENV %s is not a variable ccms-sim reads", name)
		}
	}
}

func TestShellFieldsSplitsLikeAShell(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"plain words are split on blanks", "a  b\tc", []string{"a", "b", "c"}},
		{"a double-quoted string is one word", `-ldflags "-s -w" -o x`, []string{"-ldflags", "-s -w", "-o", "x"}},
		{"quotes inside a word join it", `a'b c'd`, []string{"ab cd"}},
		{"an empty quoted string is a word", `a ""`, []string{"a", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shellFields(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := shellFields(`a "b`); err == nil {
		t.Error("an unclosed quote was accepted")
	}
}
