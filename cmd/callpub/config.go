package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

// config is every setting `callpub run` reads: CALLPUB_ plus the names in the tags.
type config struct {
	LogLevel    slog.Level    `env:"LOG_LEVEL, default=info"`
	LogFormat   string        `env:"LOG_FORMAT, default=json"`
	HTTPAddr    string        `env:"HTTP_ADDR, default=:8080"`
	StateDir    string        `env:"STATE_DIR, default=./data"`
	LockTimeout time.Duration `env:"STATE_LOCK_TIMEOUT, default=5s"`
	PruneEvery  time.Duration `env:"STATE_PRUNE_INTERVAL, default=1h"`    // the store's retention (retention.go)
	KeepMargin  time.Duration `env:"STATE_RETENTION_MARGIN, default=24h"` // kept before the API's horizon
	PII         string        `env:"PII, default=plain"`
	PIIKey      ccms.Secret   `env:"PII_KEY"`
	Shard       string        `env:"SHARD"`
	Shards      int           `env:"SHARDS"`
	PodName     string        `env:"POD_NAME"`
	// GroupID turns on group mode (group.go): replicas share the streams
	// through a Kafka consumer group; GroupSession is its session timeout.
	GroupID      string        `env:"GROUP_ID"`
	GroupSession time.Duration `env:"GROUP_SESSION_TIMEOUT, default=10s"`
	// MetricsPerStreamMax: above this many owned streams, lag, headroom and
	// pending are exported per direction (poller.SetStreamSeriesMax).
	MetricsPerStreamMax int `env:"METRICS_PER_STREAM_MAX, default=1000"`
	// EventMode is the CloudEvents content mode of every record; loadConfig
	// hands it to Kafka (publisher.Config.EventMode, which has no variable).
	EventMode schemas.Mode `env:"EVENT_MODE, default=structured"`

	Poll  poller.Config    // CALLPUB_CC_ID, _VDNS, _POLL_INTERVAL, ...
	CCMS  ccms.Config      `env:", prefix=CCMS_"`  // CALLPUB_CCMS_URL, _AK, _SK, ...
	Kafka publisher.Config `env:", prefix=KAFKA_"` // CALLPUB_KAFKA_BROKERS, _TOPIC, ...
}

// help describes every variable; envHelp adds each one's default from the tags.
// A test checks that every variable of config has a line here and in README.md.
var helpText = map[string]string{
	"LOG_LEVEL":             "debug, info, warn or error",
	"LOG_FORMAT":            "json or text (logs go to stderr)",
	"HTTP_ADDR":             "ops listener: /metrics /healthz /readyz /status",
	"STATE_DIR":             "folder of the bbolt store (callpub.db); one replica per folder",
	"STATE_LOCK_TIMEOUT":    "how long to wait for the store's file lock before failing",
	"PII":                   "phone numbers in events: plain, mask (last 4 digits kept) or hash (HMAC-SHA256)",
	"PII_KEY":               "secret key for PII=hash (or PII_KEY_FILE)",
	"SHARD":                 "i/n: this replica owns the streams whose (ccId, VDN) hash falls in shard i of n",
	"SHARDS":                "n: like SHARD, with i taken from the StatefulSet ordinal at the end of POD_NAME",
	"POD_NAME":              "this pod's name (Kubernetes downward API), e.g. callpub-2; used with SHARDS",
	"GROUP_ID":              "group mode: replicas with this Kafka consumer group id share the streams, each owning the VDNs of the event topic partitions the group gives it, and take them over from a replica that stops; needs KAFKA_STATE_TOPIC, excludes SHARD and SHARDS",
	"GROUP_SESSION_TIMEOUT": "group mode: a replica that stops heartbeating loses its partitions to the others after this (the broker allows 6s..30m by default)",

	"METRICS_PER_STREAM_MAX": "lag, horizon headroom and pending calls are exported per stream (3 series each) while this replica owns at most this many streams; above, one series per direction under the same names (largest lag, least headroom, sum of pending; /status has every stream); 0: never per stream",

	"STATE_PRUNE_INTERVAL":   "how often the service drops seen-call days beyond the API's reach plus RETENTION_MARGIN (at most 24h; also once at start)",
	"STATE_RETENTION_MARGIN": "seen calls are kept this long before the API's horizon (00:00 of yesterday); shorter risks duplicates, never loss",

	"CC_ID":              "call center id, 1..65535",
	"VDNS":               "VDNs to poll, ranges allowed: 1-200,305",
	"DIRECTIONS":         "in, out or in,out",
	"POLL_INTERVAL":      "shortest interval of a stream's fresh step; the pacer sets each stream's between this and POLL_MAX_INTERVAL, from its arrival rate, to spend 80% of CCMS_RATE",
	"POLL_MAX_INTERVAL":  "longest interval of a stream's fresh step; when the budget cannot keep every stream within it, turns run late in due order (callpub_poll_budget_short)",
	"FRESHNESS_TARGET":   "a p99 delay (row written to poll) to price: /status pace.target_needs_rps and callpub_poll_budget_needed_rps say what CCMS_RATE would reach it; 0s: none",
	"LOOKBACK":           "each fresh step re-reads this much before the cursor (late rows)",
	"POLL_LAG":           "never read closer to now than this",
	"POLL_MAX_SPAN":      "a fresh step moves its cursor at most this much (the default spans the API's whole reach)",
	"POLL_WINDOW_ROWS":   "a catching-up window is sized to hold about this many rows, by the stream's density learned from earlier reads; quiet streams read up to now at once",
	"SWEEP_INTERVAL":     "how often each stream re-reads SWEEP_LOOKBACK",
	"SWEEP_LOOKBACK":     "span a sweep re-reads (long calls, slow ingestion)",
	"RECONCILE_DELAY":    "after midnight, wait this long, then re-read all of yesterday and seal it",
	"LAST_CHANCE_BEFORE": "read yesterday once more this long before the API forgets it (rows later than every sweep), and seal it again",
	"MAX_CALL_DURATION":  "a call still running this long after it began is published without an end; 0s: only when the last-chance read still finds it running",
	"HEARTBEAT_INTERVAL": "per-stream heartbeat records on the control topic, at most this often",
	"START_AT":           "where a stream without a cursor starts: horizon (all the API still holds) or now (minus LOOKBACK; its first sweeps still re-read SWEEP_LOOKBACK, and days before the start are not reconciled)",
	"CCMS_RATE":          "shared request budget, requests/s (halved while most recent answers push back with 429/502/503/504 or timeouts, doubled back within seconds once they stop)",
	"CCMS_MAX_IN_FLIGHT": "requests in flight at most, and the burst of the budget; the service runs 4 workers per request slot, so publishing overlaps fetching",
	"CCMS_PAGE_SIZE":     "rows per page, 1..100",
	"CCMS_MAX_PAGES":     "a window needing more pages than this is split in two",
	"CCMS_MIN_SPAN":      "windows are never split below this span",
	"POLL_RETRY_BASE":    "first backoff after a step that failed on auth, a block, a misconfiguration or a permanent error (doubles, with jitter); other failures are held and probed every 1-2 s (not before a server's Retry-After, capped at POLL_RETRY_MAX), and all resume within seconds of the first success",
	"POLL_RETRY_MAX":     "longest backoff after such failed steps",
	"POLL_STEP_TIMEOUT":  "a step in hand at shutdown may take this long to finish",
}

// loadConfig reads and validates the configuration. Any problem is a
// *usageError whose message is one line naming the variable.
func loadConfig(ctx context.Context, env envconfig.Lookuper) (config, error) {
	var cfg config
	files := &fileLookuper{env: env}
	err := envconfig.ProcessWith(ctx, &envconfig.Config{
		Target:   &cfg,
		Lookuper: envconfig.PrefixLookuper("CALLPUB_", files),
	})
	if err := errors.Join(files.err, err); err != nil {
		return config{}, configError(err)
	}
	cfg.Kafka.EventMode = cfg.EventMode
	if err := cfg.validate(); err != nil {
		return config{}, configError(err)
	}
	return cfg, nil
}

// configError flattens err to one line prefixed with "config: ", naming
// the variable instead of go-envconfig's struct field path or a package's
// Config field (withVarNames).
func configError(err error) error {
	var parts []string
	for line := range strings.SplitSeq(withVarNames(err).Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, varName(line))
		}
	}
	return &usageError{fmt.Errorf("config: %s", strings.Join(parts, "; "))}
}

// varName rewrites a go-envconfig message "Poll: VDNs: reason" to
// "CALLPUB_VDNS: reason".
func varName(msg string) string {
	for _, v := range envVars() {
		prefix := strings.Join(v.Field, ": ") + ": "
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			name := "CALLPUB_" + v.Name
			rest = strings.TrimSuffix(rest, ": "+name)
			return name + ": " + rest
		}
	}
	return msg
}

// configField is where a field error's field sits in config (Poll,
// PollInterval) and its reason, or ok false when err is not one.
//
// Config errors have one convention: poller, poller/ccms and publisher each
// return a *ConfigError{Field, Err} per bad value, naming a field of their
// own Config. Only cmd/callpub knows where config nests those Configs, so
// which variable each field is read from; withVarNames names them.
func configField(err error) (path []string, reason error, ok bool) {
	switch e := err.(type) {
	case *poller.ConfigError:
		return []string{"Poll", e.Field}, e.Err, true
	case *ccms.ConfigError:
		return []string{"CCMS", e.Field}, e.Err, true
	case *publisher.ConfigError:
		if e.Field == "EventMode" { // read from CALLPUB_EVENT_MODE, outside the KAFKA_ prefix
			return []string{"EventMode"}, e.Err, true
		}
		return []string{"Kafka", e.Field}, e.Err, true
	}
	return nil, nil, false
}

// withVarNames is err with every field error in it, however joined or
// wrapped, named by its variable: publisher.New's "kafka config: CAFile: x"
// becomes "kafka config: CALLPUB_KAFKA_CA_FILE: x". All other text stays as
// it is, and errors.Is and errors.As still see err's chain.
func withVarNames(err error) error {
	if err == nil {
		return nil
	}
	msg := renameFields(err)
	if msg == err.Error() {
		return err
	}
	return &renamedError{msg: msg, err: err}
}

// renameFields is err's message with each field error's "Field: reason"
// replaced by "CALLPUB_NAME: reason". A wrapping error keeps its own text
// around the text of what it wraps; a field without a variable keeps its
// Go name.
func renameFields(err error) string {
	if path, reason, ok := configField(err); ok {
		for _, v := range envVars() {
			if slices.Equal(v.Field, path) {
				return "CALLPUB_" + v.Name + ": " + reason.Error()
			}
		}
		return err.Error()
	}
	var inner []error
	switch u := err.(type) {
	case interface{ Unwrap() []error }: // errors.Join, fmt.Errorf with several %w
		inner = u.Unwrap()
	case interface{ Unwrap() error }:
		inner = []error{u.Unwrap()}
	}
	rest := err.Error()
	var b strings.Builder
	for _, e := range inner {
		if e == nil {
			continue
		}
		i := strings.Index(rest, e.Error())
		if i < 0 {
			continue // the wrapper does not show this one's text
		}
		b.WriteString(rest[:i])
		b.WriteString(renameFields(e))
		rest = rest[i+len(e.Error()):]
	}
	b.WriteString(rest)
	return b.String()
}

// renamedError is an error with its field errors named by their variables.
type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

func (c config) validate() error {
	var errs []error
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("CALLPUB_LOG_FORMAT: %q is not json or text", c.LogFormat))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("CALLPUB_STATE_DIR: must not be empty"))
	}
	if c.LockTimeout <= 0 {
		errs = append(errs, fmt.Errorf("CALLPUB_STATE_LOCK_TIMEOUT: must be positive, got %v", c.LockTimeout))
	}
	if c.PruneEvery <= 0 || c.PruneEvery > 24*time.Hour {
		errs = append(errs, fmt.Errorf("CALLPUB_STATE_PRUNE_INTERVAL: must be positive and at most 24h, got %v", c.PruneEvery))
	}
	if c.MetricsPerStreamMax < 0 {
		errs = append(errs, fmt.Errorf("CALLPUB_METRICS_PER_STREAM_MAX: must not be negative, got %d", c.MetricsPerStreamMax))
	}
	if c.KeepMargin < 0 {
		errs = append(errs, fmt.Errorf("CALLPUB_STATE_RETENTION_MARGIN: must not be negative, got %v", c.KeepMargin))
	}
	switch c.PII {
	case "plain", "mask":
	case "hash":
		if c.PIIKey == "" {
			errs = append(errs, errors.New("CALLPUB_PII_KEY: required when CALLPUB_PII=hash"))
		}
	default:
		errs = append(errs, fmt.Errorf("CALLPUB_PII: %q is not plain, mask or hash", c.PII))
	}
	errs = append(errs, c.checkGroup()...)
	if _, err := c.shard(); err != nil {
		errs = append(errs, err)
	}
	if _, err := time.LoadLocation(c.CCMS.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("CALLPUB_CCMS_TIMEZONE: %q is not an IANA time zone", c.CCMS.Timezone))
	} else if _, err := ccms.NewClient(c.CCMS, ccms.Deps{}); err != nil {
		// NewClient sends nothing; it is the one place the CC-CMS settings
		// are checked, so `run` fails on them before it dials Kafka.
		// Its problems go in without its "ccms config: " prefix, which would
		// repeat the "config: " of configError.
		errs = append(errs, unwrapJoin(err))
	}
	errs = append(errs, c.Poll.Validate())
	return errors.Join(errs...)
}

// unwrapJoin is the errors.Join that err directly wraps, or err itself.
func unwrapJoin(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		if _, ok := inner.(interface{ Unwrap() []error }); ok {
			return inner
		}
	}
	return err
}

// fileLookuper lets any variable NAME be given as NAME_FILE instead: the path
// of a file holding the value. Setting both is an error; so is an unreadable file.
type fileLookuper struct {
	env envconfig.Lookuper
	err error
}

func (f *fileLookuper) Lookup(key string) (string, bool) {
	v, ok := f.env.Lookup(key)
	path, fromFile := f.env.Lookup(key + "_FILE")
	switch {
	case ok && fromFile:
		f.err = errors.Join(f.err, fmt.Errorf("%s and %s_FILE are both set", key, key))
	case fromFile:
		b, err := os.ReadFile(path)
		if err != nil {
			// the path, never the content
			f.err = errors.Join(f.err, fmt.Errorf("%s_FILE: %w", key, err))
			return "", false
		}
		return strings.TrimRight(string(b), "\r\n"), true
	}
	return v, ok
}

// envVar is one variable of the configuration, found by walking the tags.
type envVar struct {
	Name, Default string
	Required      bool
	Field         []string // Go field path, e.g. Poll, VDNs
}

// envVars lists every variable config reads, in declaration order, without the CALLPUB_ prefix.
func envVars() []envVar {
	var out []envVar
	var walk func(t reflect.Type, prefix string, path []string)
	walk = func(t reflect.Type, prefix string, path []string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, hasTag := f.Tag.Lookup("env")
			name, opts, _ := strings.Cut(tag, ",")
			name = strings.TrimSpace(name)
			if f.Type.Kind() == reflect.Struct && name == "" {
				p := prefix
				for o := range strings.SplitSeq(opts, ",") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(o), "prefix="); ok {
						p += v
					}
				}
				walk(f.Type, p, append(slices.Clone(path), f.Name))
				continue
			}
			if !hasTag || name == "" {
				continue
			}
			v := envVar{Name: prefix + name, Field: append(slices.Clone(path), f.Name)}
			if _, d, ok := strings.Cut(opts, "default="); ok {
				v.Default = d
			}
			v.Required = strings.Contains(opts, "required")
			out = append(out, v)
		}
	}
	walk(reflect.TypeFor[config](), "", nil)
	return out
}

// envHelp renders the variable table of --help.
func envHelp() string {
	var b strings.Builder
	b.WriteString("\nEnvironment (every NAME may instead be given as NAME_FILE, a path to a file holding the value):\n")
	width := 0
	for _, v := range envVars() {
		width = max(width, len(v.Name))
	}
	for _, v := range envVars() {
		d := v.Default
		switch {
		case v.Required:
			d = "required"
		case d == "":
			d = "unset"
		}
		desc := helpText[v.Name]
		if desc == "" {
			desc = ccmsHelp[v.Name]
		}
		if desc == "" {
			desc = kafkaHelp[v.Name]
		}
		fmt.Fprintf(&b, "  CALLPUB_%-*s %s [%s]\n", width, v.Name, desc, d)
	}
	return b.String()
}

// checkGroup checks the group-mode settings (group.go).
func (c config) checkGroup() []error {
	if c.GroupID == "" {
		return nil
	}
	var errs []error
	if c.Shard != "" || c.Shards != 0 {
		errs = append(errs, errors.New("CALLPUB_GROUP_ID: set together with CALLPUB_SHARD or CALLPUB_SHARDS: the group shares the streams itself, unset them"))
	}
	if c.Kafka.StateTopic == "" {
		errs = append(errs, errors.New("CALLPUB_GROUP_ID: group mode needs CALLPUB_KAFKA_STATE_TOPIC: a replica handed a stream rebuilds its state from it"))
	}
	if c.GroupSession < 6*time.Second || c.GroupSession > 30*time.Minute {
		errs = append(errs, fmt.Errorf("CALLPUB_GROUP_SESSION_TIMEOUT: must be between 6s and 30m (the broker's defaults), got %v", c.GroupSession))
	}
	return errs
}
