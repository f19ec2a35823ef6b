package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// base uses; decoding is strict, so any other field fails the test.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			MatchNames []string `json:"matchNames,omitempty"`
			Any        bool     `json:"any,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is monitoring.coreos.com/v1 PrometheusRule; its groups are
// compared with deploy/prometheus's rule file.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ruleFile `json:"spec"`
}

// kustomization is the part of kustomize.config.k8s.io/v1beta1 the base uses.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name, NewName, NewTag string
	} `json:"images"`
}

// objects is a decoded set of manifests, by kind.
type objects struct {
	ConfigMaps      []corev1.ConfigMap
	Secrets         []corev1.Secret
	Services        []corev1.Service
	StatefulSets    []appsv1.StatefulSet
	PDBs            []policyv1.PodDisruptionBudget
	ServiceMonitors []serviceMonitor
	PrometheusRules []prometheusRule
}

// decodeStrict decodes one manifest into the Go type of its apiVersion and
// kind; unknown fields and unknown kinds are errors.
func (o *objects) decodeStrict(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var err error
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "v1 ConfigMap":
		o.ConfigMaps, err = decodeAppend(o.ConfigMaps, doc)
	case "v1 Secret":
		o.Secrets, err = decodeAppend(o.Secrets, doc)
	case "v1 Service":
		o.Services, err = decodeAppend(o.Services, doc)
	case "apps/v1 StatefulSet":
		o.StatefulSets, err = decodeAppend(o.StatefulSets, doc)
	case "policy/v1 PodDisruptionBudget":
		o.PDBs, err = decodeAppend(o.PDBs, doc)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o.ServiceMonitors, err = decodeAppend(o.ServiceMonitors, doc)
	case "monitoring.coreos.com/v1 PrometheusRule":
		o.PrometheusRules, err = decodeAppend(o.PrometheusRules, doc)
	default:
		return fmt.Errorf("unexpected kind %q", gvk)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return nil
}

func decodeAppend[T any](s []T, doc []byte) ([]T, error) {
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		return s, err
	}
	return append(s, v), nil
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// render runs kustomize (the library behind `kubectl kustomize`) on the base
// and decodes every rendered object strictly.
func render(t *testing.T) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	var o objects
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if err := o.decodeStrict(b); err != nil {
			t.Errorf("rendered %s: %v", r.CurId(), err)
		}
	}
	return o
}

func TestEveryManifestDecodesStrictlyIntoItsAPIType(t *testing.T) {
	k := readKustomization(t)
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, f := range files {
		name := filepath.Base(f)
		if name == "kustomization.yaml" {
			continue
		}
		listed = append(listed, name)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var o objects
		if err := o.decodeStrict(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Every file is a resource of the kustomization and every resource a file.
	got := slices.Sorted(slices.Values(k.Resources))
	if diff := cmp.Diff(listed, got); diff != "" {
		t.Errorf("kustomization resources differ from the files in %s (-files +resources):\n%s", k8sDir, diff)
	}
}

func TestStrictDecodingRejectsAnUnknownField(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec:\n  replica: 3\n")
	var o objects
	if err := o.decodeStrict(doc); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a misspelt field decoded without the error naming it: %v", err)
	}
}

func TestRenderedBaseIsConsistent(t *testing.T) {
	k := readKustomization(t)
	o := render(t)
	if len(o.StatefulSets) != 1 || len(o.Services) != 1 || len(o.ConfigMaps) != 1 || len(o.Secrets) != 1 ||
		len(o.PDBs) != 1 || len(o.ServiceMonitors) != 1 || len(o.PrometheusRules) != 1 {
		t.Fatalf("rendered %d StatefulSets, %d Services, %d ConfigMaps, %d Secrets, %d PDBs, %d ServiceMonitors, %d PrometheusRules; want one of each",
			len(o.StatefulSets), len(o.Services), len(o.ConfigMaps), len(o.Secrets), len(o.PDBs), len(o.ServiceMonitors), len(o.PrometheusRules))
	}
	sts, svc, cm, sec, pdb, sm := o.StatefulSets[0], o.Services[0], o.ConfigMaps[0], o.Secrets[0], o.PDBs[0], o.ServiceMonitors[0]
	pod := sts.Spec.Template

	t.Run("every object is in the kustomization's namespace and carries its labels", func(t *testing.T) {
		metas := []metav1.ObjectMeta{sts.ObjectMeta, svc.ObjectMeta, cm.ObjectMeta, sec.ObjectMeta, pdb.ObjectMeta, sm.ObjectMeta, o.PrometheusRules[0].ObjectMeta}
		for _, m := range metas {
			if m.Namespace != k.Namespace {
				t.Errorf("%s is in namespace %q, want %q", m.Name, m.Namespace, k.Namespace)
			}
			for _, l := range k.Labels {
				for key, v := range l.Pairs {
					if m.Labels[key] != v {
						t.Errorf("%s lacks label %s=%s", m.Name, key, v)
					}
				}
			}
		}
	})

	t.Run("selectors select the pods", func(t *testing.T) {
		podLabels := labels.Set(pod.Labels)
		for what, sel := range map[string]*metav1.LabelSelector{
			"StatefulSet": sts.Spec.Selector,
			"PDB":         pdb.Spec.Selector,
			"Service":     {MatchLabels: svc.Spec.Selector},
		} {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil {
				t.Errorf("%s selector: %v", what, err)
				continue
			}
			if s.Empty() || !s.Matches(podLabels) {
				t.Errorf("%s selector %v does not select the pod labels %v", what, s, podLabels)
			}
		}
		s, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not select the Service's labels %v (err %v)", s, svc.Labels, err)
		}
	})

	t.Run("the headless Service, ServiceMonitor and probes name the ops port", func(t *testing.T) {
		if sts.Spec.ServiceName != svc.Name || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet serviceName %q, Service %q with clusterIP %q: want the headless Service", sts.Spec.ServiceName, svc.Name, svc.Spec.ClusterIP)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		svcPorts := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			svcPorts[p.Name] = true
			if _, ok := ports[p.TargetPort.String()]; !ok {
				t.Errorf("Service port %s targets %s, not a container port name", p.Name, p.TargetPort.String())
			}
		}
		for _, e := range sm.Spec.Endpoints {
			if !svcPorts[e.Port] || e.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint %s%s: want a Service port name and /metrics", e.Port, e.Path)
			}
		}
		addr := envValue(c, cm, "CALLPUB_HTTP_ADDR", callpubVars(t)["CALLPUB_HTTP_ADDR"])
		if want := fmt.Sprintf(":%d", ports["ops"]); addr != want {
			t.Errorf("CALLPUB_HTTP_ADDR is %q but the ops container port is %d", addr, ports["ops"])
		}
		for what, tc := range map[string]struct {
			probe *corev1.Probe
			path  string
		}{
			"liveness":  {c.LivenessProbe, "/healthz"},
			"readiness": {c.ReadinessProbe, "/readyz"},
			"startup":   {c.StartupProbe, "/healthz"},
		} {
			if tc.probe == nil || tc.probe.HTTPGet == nil {
				t.Errorf("no httpGet %s probe", what)
				continue
			}
			if g := tc.probe.HTTPGet; g.Path != tc.path || ports[g.Port.String()] == 0 {
				t.Errorf("%s probe GET %s on %s, want %s on a named container port", what, g.Path, g.Port.String(), tc.path)
			}
		}
	})

	t.Run("every variable is one callpub reads", func(t *testing.T) {
		vars := callpubVars(t)
		c := pod.Spec.Containers[0]
		for _, e := range c.Env {
			if reason := unknownCallpubVar(vars, e.Name); reason != "" {
				t.Errorf("StatefulSet env: %s", reason)
			}
		}
		for key := range cm.Data {
			if reason := unknownCallpubVar(vars, key); reason != "" {
				t.Errorf("ConfigMap: %s", reason)
			}
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cm.Name {
			t.Errorf("envFrom %+v, want the ConfigMap %s", c.EnvFrom, cm.Name)
		}
		for name, def := range vars {
			if def != "required" {
				continue
			}
			if envValue(c, cm, name, "") == "" && envValue(c, cm, name+"_FILE", "") == "" {
				t.Errorf("required %s is set neither in the StatefulSet nor in the ConfigMap", name)
			}
		}
	})

	t.Run("group mode: the replicas join a group and no shard is set", func(t *testing.T) {
		c := pod.Spec.Containers[0]
		if id := envValue(c, cm, "CALLPUB_GROUP_ID", ""); strings.TrimSpace(id) == "" {
			t.Errorf("CALLPUB_GROUP_ID is %q: the base runs in group mode and needs a group id", id)
		}
		// Not even empty: the base carries no shard setting at all.
		for _, name := range []string{"CALLPUB_SHARD", "CALLPUB_SHARDS"} {
			if where, ok := envSet(c, cm, name); ok {
				t.Errorf("%s: group mode refuses %s; the group decides what each replica owns", where, name)
			}
		}
	})

	t.Run("group mode: the state topic is set and is none of the other topics", func(t *testing.T) {
		c := pod.Spec.Containers[0]
		vars := callpubVars(t)
		state := envValue(c, cm, "CALLPUB_KAFKA_STATE_TOPIC", "")
		if state == "" {
			t.Fatal("CALLPUB_KAFKA_STATE_TOPIC is unset: group mode needs it, a replica handed a stream rebuilds it from there")
		}
		for _, name := range []string{"CALLPUB_KAFKA_TOPIC", "CALLPUB_KAFKA_CONTROL_TOPIC", "CALLPUB_KAFKA_DLQ_TOPIC"} {
			if other := envValue(c, cm, name, helpDefault(vars, name)); other == state {
				t.Errorf("CALLPUB_KAFKA_STATE_TOPIC and %s are both %q: the state topic is compacted and holds only state records", name, state)
			}
		}
	})

	t.Run("group mode: another replica can take over and the pods start together", func(t *testing.T) {
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 2 {
			t.Errorf("replicas %s: want 2 at least, so that a dead replica's streams have somewhere to go", ptrString(sts.Spec.Replicas))
		}
		if p := sts.Spec.PodManagementPolicy; p != appsv1.ParallelPodManagement {
			t.Errorf("podManagementPolicy %q, want %q: one by one, each new pod is a rebalance of its own", p, appsv1.ParallelPodManagement)
		}
		if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.Type != intstr.Int || mu.IntVal < 1 || sts.Spec.Replicas == nil || mu.IntVal >= *sts.Spec.Replicas {
			t.Errorf("PodDisruptionBudget maxUnavailable %v with replicas %s: want a number from 1 to replicas-1 (one pod down, never all)", mu, ptrString(sts.Spec.Replicas))
		}
	})

	t.Run("the store lives on the per-replica claim and secrets come from mounted files", func(t *testing.T) {
		c := pod.Spec.Containers[0]
		claims := map[string]bool{}
		for _, pvc := range sts.Spec.VolumeClaimTemplates {
			claims[pvc.Name] = true
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Spec.Volumes {
			volumes[v.Name] = v
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m
			if _, ok := volumes[m.Name]; !ok && !claims[m.Name] {
				t.Errorf("volumeMount %s names no volume or claim template", m.Name)
			}
		}
		dir := envValue(c, cm, "CALLPUB_STATE_DIR", "")
		if m, ok := mounts[dir]; !ok || !claims[m.Name] {
			t.Errorf("CALLPUB_STATE_DIR %q is not the mount path of a volumeClaimTemplate", dir)
		}
		for _, e := range c.Env {
			if !strings.HasSuffix(e.Name, "_FILE") || strings.HasSuffix(e.Name, "CA_FILE") {
				continue
			}
			m, ok := mounts[filepath.Dir(e.Value)]
			if !ok || volumes[m.Name].Secret == nil || volumes[m.Name].Secret.SecretName != sec.Name {
				t.Errorf("%s=%s is not in a mount of the Secret %s", e.Name, e.Value, sec.Name)
				continue
			}
			key := filepath.Base(e.Value)
			_, inData := sec.Data[key]
			_, inString := sec.StringData[key]
			if !inData && !inString {
				t.Errorf("%s=%s: the Secret has no key %q", e.Name, e.Value, key)
			}
		}
	})

	t.Run("the pod runs as non-root with a read-only root file system", func(t *testing.T) {
		ps, cs := pod.Spec.SecurityContext, pod.Spec.Containers[0].SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.FSGroup == nil {
			t.Errorf("pod securityContext %+v: want runAsNonRoot and an fsGroup for the volume", ps)
		}
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem ||
			cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
			cs.Capabilities == nil || !slices.Contains(cs.Capabilities.Drop, "ALL") {
			t.Errorf("container securityContext %+v: want a read-only root, no privilege escalation, ALL dropped", cs)
		}
		r := pod.Spec.Containers[0].Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			t.Errorf("resources %+v: want cpu and memory requests and a memory limit", r)
		}
	})

	t.Run("a stop has time to finish the turn in hand and leave the group", func(t *testing.T) {
		c := pod.Spec.Containers[0]
		v := envValue(c, cm, "CALLPUB_POLL_STEP_TIMEOUT", callpubVars(t)["CALLPUB_POLL_STEP_TIMEOUT"])
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CALLPUB_POLL_STEP_TIMEOUT %q: %v", v, err)
		}
		grace := pod.Spec.TerminationGracePeriodSeconds
		if grace == nil || time.Duration(*grace)*time.Second < d+stopMargin {
			t.Errorf("terminationGracePeriodSeconds %v is not %v above CALLPUB_POLL_STEP_TIMEOUT %v: a pod killed mid-turn may publish what was in flight again, and one killed before it leaves the group leaves its streams unpolled for the session timeout", ptrString(grace), stopMargin, d)
		}
	})

	t.Run("the image is the one the kustomization names", func(t *testing.T) {
		for _, img := range k.Images {
			if got, want := pod.Spec.Containers[0].Image, img.NewName+":"+img.NewTag; got != want {
				t.Errorf("image %q, want %q", got, want)
			}
		}
	})
}

// stopMargin is what a stop needs after the turn in hand: leave the group,
// flush Kafka, close the store.
const stopMargin = 10 * time.Second

// helpDefault is a variable's default as `callpub --help` prints it, "" for
// none.
func helpDefault(vars map[string]string, name string) string {
	if d := vars[name]; d != "unset" && d != "required" {
		return d
	}
	return ""
}

// envSet tells whether the container is given name or name_FILE at all, an
// empty value included, and by what.
func envSet(c corev1.Container, cm corev1.ConfigMap, name string) (where string, ok bool) {
	for _, n := range []string{name, name + "_FILE"} {
		for _, e := range c.Env {
			if e.Name == n {
				return "the StatefulSet's env sets " + n, true
			}
		}
		if _, ok := cm.Data[n]; ok {
			return "the ConfigMap sets " + n, true
		}
	}
	return "", false
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// envValue is what the container sees for name: its env, else the
// ConfigMap it loads, else def.
func envValue(c corev1.Container, cm corev1.ConfigMap, name, def string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	if v, ok := cm.Data[name]; ok {
		return v
	}
	return def
}
