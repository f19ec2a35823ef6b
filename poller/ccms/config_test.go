package ccms

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-envconfig"
)

func TestConfigLoadsFromTheEnvironmentWithItsDefaults(t *testing.T) {
	var cfg Config
	err := envconfig.ProcessWith(t.Context(), &envconfig.Config{
		Target: &cfg,
		Lookuper: envconfig.PrefixLookuper("CALLPUB_CCMS_", envconfig.MapLookuper(map[string]string{
			"CALLPUB_CCMS_URL": "https://cms.example.com:28443",
			"CALLPUB_CCMS_AK":  "ak",
			"CALLPUB_CCMS_SK":  "the-secret",
		})),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		URL: "https://cms.example.com:28443", AK: "ak", SK: "the-secret",
		Timezone: "UTC", DayBoundaryMode: "auto", Timeout: 30 * time.Second,
		SignHeaders: []string{"content-length", "content-type", "host"}, SignTimestamp: "seconds", SignEncoding: "hex",
		ContentType: "application/json; charset=UTF-8",
		MaxAttempts: 3, RetryBaseDelay: 500 * time.Millisecond, RetryMaxDelay: 30 * time.Second, MaxBodyBytes: 4 << 20,
		Rate: 10, MaxInFlight: 4, PageSize: 100, MaxPages: 20, MinSpan: time.Second,
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.SK.Reveal() != "the-secret" || strings.Contains(fmt.Sprintf("%+v", cfg), "the-secret") {
		t.Errorf("SK loaded wrong or printed: %+v", cfg)
	}
	// The defaults in the tags and the zero-value defaults of NewClient agree.
	fromTags, err := NewClient(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	fromZero, err := NewClient(Config{URL: cfg.URL, AK: cfg.AK, SK: cfg.SK}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	opts := cmp.AllowUnexported(Client{}, signer{}, variant{}, Reach{})
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".http", ".log", ".observe", ".now", ".loc", ".Loc", ".capped", ".detected", ".pages", ".slots", ".clock":
			return true
		}
		return false
	}, cmp.Ignore())
	if diff := cmp.Diff(fromTags, fromZero, opts, ignore); diff != "" {
		t.Errorf("tag defaults and zero-value defaults differ (-tags +zero):\n%s", diff)
	}
}

func TestConfigNamesTheMissingVariable(t *testing.T) {
	var cfg Config
	err := envconfig.ProcessWith(t.Context(), &envconfig.Config{
		Target:   &cfg,
		Lookuper: envconfig.PrefixLookuper("CALLPUB_CCMS_", envconfig.MapLookuper(map[string]string{"CALLPUB_CCMS_AK": "ak", "CALLPUB_CCMS_SK": "x"})),
	})
	if want := "URL: missing required value: CALLPUB_CCMS_URL"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
