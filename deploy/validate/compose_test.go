package validate

import (
	"encoding/json"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose spec deploy/compose.yaml uses.
// Decoding is strict, so a misspelt key fails the test; x- extensions are
// dropped first.
type composeProject struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]any `json:"volumes"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
		Target     string `json:"target"`
	} `json:"build"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Entrypoint      []string          `json:"entrypoint"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Ports           []string          `json:"ports"`
	Volumes         []string          `json:"volumes"`
	Secrets         []string          `json:"secrets"`
	Restart         string            `json:"restart"`
	StopGracePeriod string            `json:"stop_grace_period"`
	Healthcheck     *struct {
		Test        []string `json:"test"`
		Interval    string   `json:"interval"`
		Timeout     string   `json:"timeout"`
		Retries     int      `json:"retries"`
		StartPeriod string   `json:"start_period"`
	} `json:"healthcheck"`
}

func readCompose(t *testing.T) composeProject {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := yaml.Unmarshal(b, &top); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	for k := range top {
		if strings.HasPrefix(k, "x-") {
			delete(top, k)
		}
	}
	j, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	var p composeProject
	if err := yaml.UnmarshalStrict(j, &p); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// mountsOf maps a service's mount targets to volume names.
func mountsOf(s composeService) map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		f := strings.Split(v, ":")
		if len(f) >= 2 {
			m[f[1]] = f[0]
		}
	}
	return m
}

func TestComposeWiresKafkaSimulatorAndCallpub(t *testing.T) {
	p := readCompose(t)
	stages := dockerStages(t)
	callpubVarsKnown := callpubVars(t)
	simVarsKnown := simVars(t)

	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition):
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, sec := range s.Secrets {
			def, ok := p.Secrets[sec]
			if !ok {
				t.Errorf("%s uses undefined secret %s", name, sec)
				continue
			}
			if _, err := os.Stat(filepath.Join(deployDir, def.File)); err != nil {
				t.Errorf("secret %s: %v", sec, err)
			}
		}
		for _, vol := range mountsOf(s) {
			if _, ok := p.Volumes[vol]; !ok && !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				t.Errorf("%s mounts undefined volume %s", name, vol)
			}
		}
		if s.Build != nil {
			df := filepath.Join(deployDir, s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s builds %s: %v", name, df, err)
			}
			if !stages[s.Build.Target] {
				t.Errorf("%s builds target %q, not a stage of the Dockerfile", name, s.Build.Target)
			}
			for k := range s.Environment {
				switch s.Build.Target {
				case "callpub":
					if reason := unknownCallpubVar(callpubVarsKnown, k); reason != "" {
						t.Errorf("service %s: %s", name, reason)
					}
				case "ccms-sim":
					if !simVarsKnown[k] {
						t.Errorf("service %s: %s is not a variable ccms-sim reads", name, k)
					}
				}
			}
		}
	}

	cp, sim, kafkaInit := p.Services["callpub"], p.Services["ccms-sim"], p.Services["kafka-init"]
	if cp.Build == nil || sim.Build == nil {
		t.Fatal("want services callpub and ccms-sim built from deploy/Dockerfile")
	}
	env := cp.Environment

	t.Run("callpub reaches the simulator by its service name and trusts its certificate", func(t *testing.T) {
		u, err := url.Parse(env["CALLPUB_CCMS_URL"])
		if err != nil || u.Scheme != "https" {
			t.Fatalf("CALLPUB_CCMS_URL %q: want https", env["CALLPUB_CCMS_URL"])
		}
		if _, ok := p.Services[u.Hostname()]; u.Hostname() != "ccms-sim" || !ok {
			t.Errorf("CALLPUB_CCMS_URL host %q is not the ccms-sim service", u.Hostname())
		}
		if !slices.Contains(strings.Split(sim.Environment["CCMS_SIM_CERT_HOSTS"], ","), u.Hostname()) {
			t.Errorf("CCMS_SIM_CERT_HOSTS %q lacks %q: the certificate would not verify", sim.Environment["CCMS_SIM_CERT_HOSTS"], u.Hostname())
		}
		if addr := sim.Environment["CCMS_SIM_ADDR"]; addr != ":"+u.Port() {
			t.Errorf("CCMS_SIM_ADDR %q: want every interface on port %s", addr, u.Port())
		}
		ca := env["CALLPUB_CCMS_CA_FILE"]
		certDir := sim.Environment["CCMS_SIM_CERT_DIR"]
		if path.Base(ca) != "ccms-sim-cert.pem" {
			t.Errorf("CALLPUB_CCMS_CA_FILE %q is not the simulator's ccms-sim-cert.pem", ca)
		}
		cpVol, simVol := mountsOf(cp)[path.Dir(ca)], mountsOf(sim)[certDir]
		if cpVol == "" || cpVol != simVol {
			t.Errorf("callpub mounts %q at %s, the simulator %q at %s: want one shared volume", cpVol, path.Dir(ca), simVol, certDir)
		}
	})

	t.Run("callpub signs with the simulator's credentials", func(t *testing.T) {
		if env["CALLPUB_CCMS_AK"] != sim.Environment["CCMS_SIM_AK"] {
			t.Errorf("CALLPUB_CCMS_AK %q, CCMS_SIM_AK %q", env["CALLPUB_CCMS_AK"], sim.Environment["CCMS_SIM_AK"])
		}
		if env["CALLPUB_CC_ID"] != sim.Environment["CCMS_SIM_CC_ID"] {
			t.Errorf("CALLPUB_CC_ID %q, CCMS_SIM_CC_ID %q", env["CALLPUB_CC_ID"], sim.Environment["CCMS_SIM_CC_ID"])
		}
		if path.Base(env["CALLPUB_CCMS_SK_FILE"]) != path.Base(sim.Environment["CCMS_SIM_SK_FILE"]) {
			t.Errorf("CALLPUB_CCMS_SK_FILE %q and CCMS_SIM_SK_FILE %q are not the same secret", env["CALLPUB_CCMS_SK_FILE"], sim.Environment["CCMS_SIM_SK_FILE"])
		}
		for name, def := range callpubVarsKnown {
			if def == "required" && env[name] == "" && env[name+"_FILE"] == "" {
				t.Errorf("required %s is not set for callpub", name)
			}
		}
	})

	t.Run("the topics callpub writes are created before it starts", func(t *testing.T) {
		script := strings.Join(kafkaInit.Command, " ")
		for _, v := range []string{"CALLPUB_KAFKA_TOPIC", "CALLPUB_KAFKA_CONTROL_TOPIC"} {
			if topic := env[v]; topic != "" && !strings.Contains(script, topic+":") {
				t.Errorf("kafka-init does not create %s=%s", v, topic)
			}
		}
		if cp.DependsOn["kafka-init"].Condition != "service_completed_successfully" {
			t.Error("callpub does not wait for kafka-init to complete")
		}
		host, _, _ := strings.Cut(env["CALLPUB_KAFKA_BROKERS"], ":")
		if _, ok := p.Services[host]; !ok {
			t.Errorf("CALLPUB_KAFKA_BROKERS %q does not name a service", env["CALLPUB_KAFKA_BROKERS"])
		}
	})

	t.Run("the store lives on a volume at the state folder", func(t *testing.T) {
		if mountsOf(cp)[env["CALLPUB_STATE_DIR"]] == "" {
			t.Errorf("CALLPUB_STATE_DIR %q is not a mounted volume", env["CALLPUB_STATE_DIR"])
		}
	})
}
