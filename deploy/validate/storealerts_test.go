package validate

import (
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"sigs.k8s.io/yaml"
)

// The store's alerts, evaluated by Prometheus's own engine on made-up
// series (one pod per situation, a sample every 5 minutes from time 0),
// pick exactly the pods they are meant for. The rules' `for` is not part of
// it.
func TestStoreAlertsPickTheRightPods(t *testing.T) {
	const gb = 1e9
	day := (24 * time.Hour).Seconds()
	db := fakeTSDB{
		series("callpub_store_free_bytes", "filling", func(s float64) float64 { return gb - 1.44*gb*s/day }),
		series("callpub_store_free_bytes", "growing-slowly", func(s float64) float64 { return gb - 0.03*gb*s/day }),
		series("callpub_store_free_bytes", "flat-and-small", func(float64) float64 { return 0.1 * gb }),
		series("callpub_store_prune_interval_seconds", "pruned", func(float64) float64 { return 3600 }),
		series("callpub_store_last_prune_timestamp_seconds", "pruned", func(s float64) float64 { return s - math.Mod(s, 3600) }),
		series("callpub_store_prune_interval_seconds", "stopped-at-1h", func(float64) float64 { return 3600 }),
		series("callpub_store_last_prune_timestamp_seconds", "stopped-at-1h", func(s float64) float64 { return min(s-math.Mod(s, 3600), 3600) }),
		series("callpub_store_prune_interval_seconds", "never", func(float64) float64 { return 3600 }),
		series("callpub_store_last_prune_timestamp_seconds", "never", func(float64) float64 { return 0 }),
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, Parser: promParser})
	exprs := alertExprs(t)
	for _, c := range []struct {
		name, alert string
		at          time.Duration
		want        []string
	}{
		{"a volume losing 1.4 GB a day with 0.6 GB left fills within a day", "CallpubStoreVolumeFillingUp", 6 * time.Hour,
			[]string{"filling"}},
		{"no prune for three intervals, or none at all, is noticed", "CallpubStorePruneFailing", 4 * time.Hour,
			[]string{"never", "stopped-at-1h"}},
		{"one missed prune is not yet a failure", "CallpubStorePruneFailing", 2*time.Hour + 30*time.Minute,
			[]string{"never"}},
		{"a start less than two intervals ago is quiet", "CallpubStorePruneFailing", time.Hour,
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			expr, ok := exprs[c.alert]
			if !ok {
				t.Fatalf("no alert %s in %s", c.alert, rulesFile)
			}
			q, err := engine.NewInstantQuery(t.Context(), db.queryable(), nil, expr, time.Unix(0, 0).Add(c.at))
			if err != nil {
				t.Fatal(err)
			}
			res := q.Exec(t.Context())
			v, err := res.Vector()
			if err != nil {
				t.Fatal(err)
			}
			var pods []string
			for _, s := range v {
				pods = append(pods, s.Metric.Get("pod"))
			}
			slices.Sort(pods)
			if diff := cmp.Diff(c.want, pods); diff != "" {
				t.Errorf("%s at %v: pods (-want +got):\n%s", expr, c.at, diff)
			}
		})
	}
}

// fakeTSDB is an in-memory storage.Queryable of float series: enough for
// the engine, without the TSDB and its cloud dependencies.
type fakeTSDB []storage.Series

// series samples f (seconds since time 0 → value) every 5 minutes for a day.
func series(name, pod string, f func(seconds float64) float64) storage.Series {
	var samples []chunks.Sample
	for at := time.Duration(0); at <= 24*time.Hour; at += 5 * time.Minute {
		samples = append(samples, floatSample{t: at.Milliseconds(), f: f(at.Seconds())})
	}
	return storage.NewListSeries(labels.FromStrings("__name__", name, "pod", pod), samples)
}

func (db fakeTSDB) queryable() storage.Queryable {
	return &storage.MockQueryable{MockQuerier: &storage.MockQuerier{
		SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			set := &seriesSet{i: -1}
			for _, s := range db {
				if matchAll(s.Labels(), ms) {
					set.list = append(set.list, s)
				}
			}
			slices.SortFunc(set.list, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
			return set
		},
	}}
}

// seriesSet lists series in label order.
type seriesSet struct {
	list []storage.Series
	i    int
}

func (s *seriesSet) Next() bool                      { s.i++; return s.i < len(s.list) }
func (s *seriesSet) At() storage.Series              { return s.list[s.i] }
func (*seriesSet) Err() error                        { return nil }
func (*seriesSet) Warnings() annotations.Annotations { return nil }

func matchAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

// floatSample is a chunks.Sample holding a float.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }

// alertExprs maps each alert of the rule file to its expression.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}
