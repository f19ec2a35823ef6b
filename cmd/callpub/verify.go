package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

const verifyUsage = `Usage: callpub verify [-from beginning|RFC3339] [-day YYYY-MM-DD[..YYYY-MM-DD]] [-stream ccId/vdn/in|out] [-json]

Proves days complete from the topics alone. Reads CALLPUB_KAFKA_TOPIC and
CALLPUB_KAFKA_CONTROL_TOPIC up to their end (from -from, or all they still hold)
and compares, for each (stream, day), the day's latest day-sealed record with the
calls on the event topic whose time falls on that day in CALLPUB_CCMS_TIMEZONE.
Needs read access to the topics only (CALLPUB_KAFKA_BROKERS and the TLS/SASL
settings): no store, no CC-CMS credentials. Reads both CloudEvents content modes.

A call counts once, on the day of its latest event; a repeated event id is a
duplicate, an update (data.update) the same call again; neither is a new call.
Exit code 0 only when every day reported is sealed complete and the topic holds
exactly the calls sealed; 1 otherwise.

`

// verifyFlags are verify's command-line settings.
type verifyFlags struct {
	from     time.Time // zero: the whole retention
	fromText string
	day      string // as given: one day or a range
	stream   string
	json     bool
}

func parseVerifyFlags(args []string, out io.Writer) (*verifyFlags, error) {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, verifyUsage); fs.PrintDefaults() }
	from := fs.String("from", "beginning", "read records produced from this RFC 3339 time on (less an hour), or from the beginning; without -day, only days starting at or after it are reported")
	day := fs.String("day", "", "report this day, or this range of days (2026-03-01..2026-03-07), for every stream (or -stream); default: every day read")
	stream := fs.String("stream", "", "report this stream only, e.g. 1/25/in")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usagef("verify: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("verify: unexpected argument %q", fs.Arg(0))
	}
	f := &verifyFlags{fromText: *from, day: *day, stream: *stream, json: *asJSON}
	if *from != "beginning" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return nil, usagef("verify: -from %q is not beginning or an RFC 3339 time", *from)
		}
		f.from = t
	}
	if *stream != "" {
		if _, err := schemas.ParseStream(*stream); err != nil {
			return nil, usagef("verify: -stream: %v", err)
		}
	}
	if _, _, err := dayRange(*day); err != nil {
		return nil, usagef("verify: -day %q: %v", *day, err)
	}
	return f, nil
}

// dayRange splits "D" or "D1..D2" into its first and last day ("" for "").
func dayRange(s string) (from, to string, err error) {
	if s == "" {
		return "", "", nil
	}
	from, to, isRange := strings.Cut(s, "..")
	if !isRange {
		to = from
	}
	a, errA := time.Parse(time.DateOnly, from)
	b, errB := time.Parse(time.DateOnly, to)
	switch {
	case errA != nil || errB != nil:
		return "", "", errors.New("want YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
	case b.Before(a):
		return "", "", errors.New("the range ends before it starts")
	}
	return from, to, nil
}

// verifyEnv is what verify reads from the environment: the Kafka settings
// and the zone that names the days.
type verifyEnv struct {
	Kafka publisher.Config `env:", prefix=KAFKA_"`
	// Timezone is CALLPUB_CCMS_TIMEZONE with ccms.Config's default (a test
	// keeps the two equal), read alone so that verify needs no CC-CMS URL or
	// credentials.
	Timezone string `env:"CCMS_TIMEZONE, default=UTC"`
}

func loadVerifyEnv(ctx context.Context, env envconfig.Lookuper) (publisher.Config, *time.Location, error) {
	var cfg verifyEnv
	if err := loadReadConfig(ctx, env, &cfg); err != nil {
		return publisher.Config{}, nil, err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return publisher.Config{}, nil, configError(errors.New("CALLPUB_KAFKA_BROKERS: missing required value"))
	}
	if cfg.Kafka.ControlTopic == "" {
		return publisher.Config{}, nil, configError(errors.New("CALLPUB_KAFKA_CONTROL_TOPIC: not set: verify compares the day-sealed records there with the event topic"))
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil || cfg.Timezone == "Local" {
		return publisher.Config{}, nil, configError(fmt.Errorf("CALLPUB_CCMS_TIMEZONE: %q is not an IANA time zone", cfg.Timezone))
	}
	return cfg.Kafka, loc, nil
}

// verify reads both topics, judges the days asked for and prints the
// report. It returns an error, so exit code 1, unless every day reported is
// proven complete.
func verify(ctx context.Context, args []string, env envconfig.Lookuper, out io.Writer) error {
	f, err := parseVerifyFlags(args, out)
	if err != nil || f == nil {
		return err // nil, nil: -help
	}
	kc, loc, err := loadVerifyEnv(ctx, env)
	if err != nil {
		return err
	}
	dialer, err := kc.Dialer()
	if err != nil {
		return configError(err)
	}
	tr := topicReader{brokers: kc.Brokers, dialer: dialer}
	l := newLedger(loc)
	events, err := tr.read(ctx, kc.Topic, f.from, l.event)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	control, err := tr.read(ctx, kc.ControlTopic, f.from, l.control)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	sel := selection{stream: f.stream}
	sel.from, sel.to, _ = dayRange(f.day)
	if events.floor.After(sel.floor) {
		sel.floor, sel.why = events.floor, "the oldest record retention left on "+kc.Topic
	}
	if f.from.After(sel.floor) {
		sel.floor, sel.why = f.from, "where -from starts"
	}
	days := l.judge(sel)
	r := verifyReport{Days: days, EventTopic: topicSummary{kc.Topic, events.records, events.bad},
		ControlTopic: topicSummary{kc.ControlTopic, control.records, control.bad}, Zone: loc.String()}
	if !sel.floor.IsZero() {
		r.Floor = sel.floor.UTC().Format(time.RFC3339)
	}
	var problems []string
	for _, t := range []topicRead{events, control} {
		if t.bad > 0 {
			problems = append(problems, fmt.Sprintf("%d records are not callpub events (the first: %v)", t.bad, t.badWhat))
		}
	}
	failed := 0
	for _, d := range days {
		if !d.OK {
			failed++
		}
	}
	if len(days) == 0 {
		problems = append(problems, "no day to verify: the topics hold nothing for what was asked")
	}
	r.OK = failed == 0 && len(problems) == 0
	r.Problems = problems
	if err := r.print(out, f.json); err != nil {
		return err
	}
	switch {
	case failed > 0:
		return fmt.Errorf("verify: %d of %d days not proven complete", failed, len(days))
	case len(problems) > 0:
		return fmt.Errorf("verify: %s", strings.Join(problems, "; "))
	}
	return nil
}

// verifyReport is the report, as -json prints it.
type verifyReport struct {
	OK           bool         `json:"ok"`
	Zone         string       `json:"zone"`            // the tenant's zone, which names the days
	Floor        string       `json:"floor,omitempty"` // days starting before it are not wholly read
	EventTopic   topicSummary `json:"eventTopic"`
	ControlTopic topicSummary `json:"controlTopic"`
	Days         []dayVerdict `json:"days"`
	Problems     []string     `json:"problems"`
}

type topicSummary struct {
	Topic   string `json:"topic"`
	Records int    `json:"records"`
	Bad     int    `json:"bad"` // records that are not callpub events
}

func (r verifyReport) print(out io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tDAY\tSEALED\tFOUND\tDUPLICATES\tUPDATES\tVERDICT")
	for _, d := range r.Days {
		sealed := "-"
		if d.Sealed != nil {
			sealed = fmt.Sprint(*d.Sealed)
		}
		verdict := d.Verdict
		if len(d.Reasons) > 0 {
			verdict += ": " + strings.Join(d.Reasons, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", d.Stream, d.Day, sealed, d.Found, d.Duplicates, d.Updates, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ok := 0
	for _, d := range r.Days {
		if d.OK {
			ok++
		}
	}
	fmt.Fprintf(out, "\n%d of %d days proven complete (days in %s; %s: %d records, %s: %d records)\n",
		ok, len(r.Days), r.Zone, r.EventTopic.Topic, r.EventTopic.Records, r.ControlTopic.Topic, r.ControlTopic.Records)
	for _, p := range r.Problems {
		fmt.Fprintln(out, "problem:", p)
	}
	return nil
}
