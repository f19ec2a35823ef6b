package validate

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// exported lists the metrics callpub exports and their labels. Dashboards
// and alerts may use only these (histograms also as _bucket, _sum, _count),
// plus the Go and process collectors (go_*, process_*).
// TestExportedMetricsAreInCallpubSource keeps the list honest.
var exported = map[string][]string{
	"callpub_stream_lag_seconds":            {"vdn", "direction"},
	"callpub_horizon_headroom_seconds":      {"vdn", "direction"},
	"callpub_pending_calls":                 {"vdn", "direction"},
	"callpub_min_horizon_headroom_seconds":  nil,
	"callpub_gaps_total":                    {"vdn", "direction"},
	"callpub_gap_seconds_total":             nil,
	"callpub_pending_dropped_total":         nil,
	"callpub_calls_published_total":         {"direction", "kind"},
	"callpub_duplicates_dropped_total":      {"direction"},
	"callpub_steps_total":                   {"lane", "result"},
	"callpub_ccms_requests_total":           {"class"},
	"callpub_ccms_request_duration_seconds": nil,
	"callpub_ccms_pages_total":              nil,
	"callpub_window_splits_total":           nil,
	"callpub_days_sealed_total":             nil,
	"callpub_ccms_future_rows_total":        nil,
	"callpub_request_budget_per_second":     nil,
	"callpub_streams":                       nil,
	"callpub_kafka_write_duration_seconds":  nil,
	"callpub_kafka_write_errors_total":      {"topic"},
	"callpub_events_published_total":        {"topic", "type"},
	"callpub_freshness_seconds":             {"direction"},

	"callpub_store_bytes":                        nil,
	"callpub_store_free_bytes":                   nil,
	"callpub_store_pruned_buckets_total":         nil,
	"callpub_store_last_prune_timestamp_seconds": nil,
	"callpub_store_prune_interval_seconds":       nil,
}

var histograms = []string{"callpub_ccms_request_duration_seconds", "callpub_kafka_write_duration_seconds", "callpub_freshness_seconds"}

// targetLabels are added by the scrape (Prometheus Operator or a plain job).
var targetLabels = []string{"pod", "namespace", "instance", "job", "container", "service", "endpoint"}

// classes are the values of callpub_ccms_requests_total's class label.
var classes = []string{"ok", "transient", "transient_limited", "auth", "blocked", "misconfigured", "permanent", "canceled"}

// metricLabels returns the labels a series of name may carry, and whether
// name is exported at all.
func metricLabels(name string) ([]string, bool) {
	if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
		return nil, true
	}
	if l, ok := exported[name]; ok {
		return l, true
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suffix {
				if suffix == "_bucket" {
					return []string{"le"}, true
				}
				return nil, true
			}
		}
	}
	return nil, false
}

var promParser = parser.NewParser(parser.Options{})

// checkExpr parses expr and returns one problem per unknown metric, unknown
// label matcher or unknown class value.
func checkExpr(expr string) []string {
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	var problems []string
	n := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		n++
		known, ok := metricLabels(vs.Name)
		if !ok {
			problems = append(problems, "unknown metric "+vs.Name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			switch {
			case m.Name == model.MetricNameLabel:
			case strings.HasPrefix(vs.Name, "go_"), strings.HasPrefix(vs.Name, "process_"):
			case !slices.Contains(known, m.Name) && !slices.Contains(targetLabels, m.Name):
				problems = append(problems, vs.Name+" has no label "+m.Name)
			case m.Name == "class":
				for _, v := range classes {
					if m.Matches(v) {
						return nil
					}
				}
				problems = append(problems, "class matcher "+m.String()+" matches no class")
			}
		}
		return nil
	})
	if n == 0 {
		problems = append(problems, "selects no metric")
	}
	return problems
}

func TestCheckExprFindsUnknownMetricsAndLabels(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"an exported metric with its labels passes", `sum by (vdn) (callpub_gaps_total{direction="in", pod="x"})`, nil},
		{"a histogram's bucket series passes", `histogram_quantile(0.9, rate(callpub_kafka_write_duration_seconds_bucket[5m]))`, nil},
		{"Go and process collectors pass", `go_goroutines + process_resident_memory_bytes`, nil},
		{"a misspelt metric is reported", `rate(callpub_gap_total[5m])`, []string{"unknown metric callpub_gap_total"}},
		{"a label the metric lacks is reported", `callpub_streams{vdn="1"}`, []string{"callpub_streams has no label vdn"}},
		{"a class that does not exist is reported", `callpub_ccms_requests_total{class="unauthorized"}`, []string{`class matcher class="unauthorized" matches no class`}},
		{"a parse error is reported", `rate(callpub_streams[5m]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkExpr(tc.expr)
			if tc.name == "a parse error is reported" {
				if len(got) != 1 || !strings.HasPrefix(got[0], "parse: ") {
					t.Errorf("got %q, want one parse problem", got)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

var sourceMetricRE = regexp.MustCompile(`"(callpub_[a-z_]+)"`)

func TestExportedMetricsAreInCallpubSource(t *testing.T) {
	found := map[string]bool{}
	for _, dir := range []string{"poller", "poller/ccms", "publisher", "dedupe", "cmd/callpub"} {
		files, err := os.ReadDir(repoRoot + "/" + dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
				continue
			}
			b, err := os.ReadFile(repoRoot + "/" + dir + "/" + f.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range sourceMetricRE.FindAllSubmatch(b, -1) {
				found[string(m[1])] = true
			}
		}
	}
	for name := range exported {
		if !found[name] {
			t.Errorf("%s is in the validator's list but no longer in callpub's source", name)
		}
	}
}

// ruleFile is Prometheus's rule_files format.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestAlertRulesAreValidAndUseOnlyExportedMetrics(t *testing.T) {
	// rulefmt is what `promtool check rules` runs: strict fields, PromQL
	// and annotation templates.
	if _, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler)); len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, p := range checkExpr(r.Expr) {
				t.Errorf("alert %s: %s", r.Alert, p)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want a summary and a description", r.Alert)
			}
		}
	}
	// The list: headroom, gap, lag, upstream errors and 401s, Kafka
	// writes, pending calls; the store's volume and its pruning.
	for _, want := range []string{"CallpubHorizonHeadroomLow", "CallpubGapDetected", "CallpubStreamLagHigh",
		"CallpubUpstreamAuthFailing", "CallpubUpstreamErrors", "CallpubKafkaWriteErrors", "CallpubPendingCallsGrowing",
		"CallpubStoreVolumeFillingUp", "CallpubStorePruneFailing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

func TestPrometheusRuleCarriesTheSameGroupsAsTheRuleFile(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(k8sDir + "/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(b, &pr); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rf, pr.Spec); diff != "" {
		t.Errorf("prometheusrule.yaml differs from %s (-rule file +PrometheusRule):\n%s", rulesFile, diff)
	}
}

// grafanaVars stands in for Grafana's variables so expressions parse.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "$__range", "6h",
	"${pod}", ".*", "$pod", ".*",
)

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-z_]+)\)$`)

func TestDashboardParsesAndUsesOnlyExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: want both", d.UID, d.Title)
	}
	exprs := 0
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			for _, prob := range checkExpr(grafanaVars.Replace(tg.Expr)) {
				t.Errorf("panel %q: %s", p.Title, prob)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValuesRE.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, s)
			continue
		}
		for _, prob := range checkExpr(m[1]) {
			t.Errorf("variable %s: %s", v.Name, prob)
		}
	}
	if exprs < 10 {
		t.Errorf("the dashboard has %d queries; did the panel format change?", exprs)
	}
}
