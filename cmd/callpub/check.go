package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/publisher"
)

// check validates the configuration, sends one signed query per direction
// for the first configured VDN, and checks the Kafka topic. It prints one line
// per check and fails if any check failed.
func check(ctx context.Context, env envconfig.Lookuper, out io.Writer) error {
	cfg, err := loadConfig(ctx, env)
	if err != nil {
		return err
	}
	sh, _ := cfg.shard() // validated by loadConfig
	owned := 0
	for _, s := range poller.Streams(cfg.Poll.CCID, cfg.Poll.VDNs, cfg.Poll.Directions) {
		if sh.owns(s) {
			owned++
		}
	}
	fmt.Fprintf(out, "config   ok: ccId %d, VDNs %s, directions %v, %d streams owned by this replica\n",
		cfg.Poll.CCID, cfg.Poll.VDNs, cfg.Poll.Directions, owned)

	quiet := slog.New(slog.DiscardHandler)
	client, err := ccms.NewClient(cfg.CCMS, ccms.Deps{Logger: quiet})
	if err != nil {
		return configError(err)
	}
	now := time.Now()
	failed := checkQueries(ctx, cfg, client, now, out)
	probeDayBoundary(ctx, cfg, client, now, out)
	pub, err := publisher.New(cfg.Kafka, quiet, prometheus.NewRegistry())
	if err != nil {
		return configError(err)
	}
	failed = append(failed, checkKafka(ctx, pub, out)...)
	if len(failed) > 0 {
		return fmt.Errorf("check: %d of %d checks failed", len(failed), len(cfg.Poll.Directions)+1)
	}
	return nil
}

// checkQueries sends one signed query per direction for the first VDN, over
// the last hour, and prints a line for each. It returns the failures.
func checkQueries(ctx context.Context, cfg config, client *ccms.Client, now time.Time, out io.Writer) []error {
	var failed []error
	vdn := cfg.Poll.VDNs[0]
	for _, d := range cfg.Poll.Directions {
		q := ccms.Query{Stream: poller.Stream{CCID: cfg.Poll.CCID, VDN: vdn, Dir: d},
			Begin: now.Add(-time.Hour).Truncate(time.Millisecond), End: now.Truncate(time.Millisecond), Limit: 1}
		qctx, cancel := context.WithTimeout(ctx, 2*cfg.CCMS.Timeout)
		page, err := client.QueryCalls(qctx, q)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("ccms %s: %w", d, err))
			fmt.Fprintf(out, "ccms     FAIL: VDN %d %s at %s: %s: %v\n", vdn, d, client.Host(), ccms.ClassOf(err), err)
			continue
		}
		fmt.Fprintf(out, "ccms     ok: VDN %d %s at %s: signed query answered, %d calls in the last hour\n",
			vdn, d, client.Host(), page.Count)
	}
	return failed
}

// checkKafka checks the event topic, prints its line and closes pub. It
// returns the failures.
func checkKafka(ctx context.Context, pub *publisher.Publisher, out io.Writer) []error {
	var failed []error
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	info, err := pub.CheckTopic(kctx)
	cancel()
	if err != nil {
		failed = append(failed, fmt.Errorf("kafka: %w", err))
		fmt.Fprintf(out, "kafka    FAIL: %v\n", err)
	} else {
		fmt.Fprintf(out, "kafka    ok: topic %s has %d partitions\n", info.Topic, info.Partitions)
	}
	if err := pub.Close(); err != nil {
		failed = append(failed, err)
	}
	return failed
}

// probeDayBoundary answers ccms-api.md A10 for this tenant when
// CALLPUB_CCMS_TIMEZONE is not UTC: is "00:00 of yesterday" the tenant's
// midnight or UTC's? (ccms.Client.ProbeBoundary, which `run` also asks with
// DAY_BOUNDARY_MODE=auto.) It prints one line and never fails the check: the
// answer is advice.
func probeDayBoundary(ctx context.Context, cfg config, client *ccms.Client, now time.Time, out io.Writer) {
	loc := client.Location()
	s := poller.Stream{CCID: cfg.Poll.CCID, VDN: cfg.Poll.VDNs[0], Dir: cfg.Poll.Directions[0]}
	qctx, cancel := context.WithTimeout(ctx, 2*cfg.CCMS.Timeout)
	p, err := client.ProbeBoundary(qctx, s, now)
	cancel()
	set := client.Reach().Boundary
	switch {
	case err != nil:
		fmt.Fprintf(out, "day      skipped: could not ask which midnight bounds the range: %v\n", err)
	case p.Apart == 0:
		if loc.String() != "UTC" {
			fmt.Fprintf(out, "day      ok: 00:00 of yesterday is the same instant in %s and UTC right now; run check again at another hour to tell them apart\n", loc)
		}
	case p.Accepted:
		fmt.Fprintf(out, "day      ok: the server answers for %s, 00:00 of yesterday in %s (%v before the other reading): "+
			"CALLPUB_CCMS_DAY_BOUNDARY_MODE=%s or auto reads all it holds (set: %s)\n",
			p.Asked.In(loc).Format("2006-01-02 15:04 MST"), zoneOf(p.Mode, loc), p.Apart, p.Mode, set)
	default:
		fmt.Fprintf(out, "day      ok: the server refuses %s, 00:00 of yesterday in the other zone: its days are %s's; "+
			"CALLPUB_CCMS_DAY_BOUNDARY_MODE=%s, auto or both is right (set: %s)\n",
			p.Asked.In(loc).Format("2006-01-02 15:04 MST"), zoneOf(p.Mode, loc), p.Mode, set)
	}
}

func zoneOf(b ccms.DayBoundary, loc *time.Location) string {
	if b == ccms.BoundaryUTC {
		return "UTC"
	}
	return loc.String()
}
