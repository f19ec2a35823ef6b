package main

import (
	"context"
	"errors"
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
	var failed []error
	client, err := ccms.NewClient(cfg.CCMS, ccms.Deps{Logger: quiet})
	if err != nil {
		return configError(err)
	}
	vdn := cfg.Poll.VDNs[0]
	now := time.Now()
	for _, d := range cfg.Poll.Directions {
		q := ccms.Query{CCID: cfg.Poll.CCID, VDN: vdn, Inbound: d.Inbound(),
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

	pub, err := publisher.New(cfg.Kafka, quiet, prometheus.NewRegistry())
	if err != nil {
		return configError(err)
	}
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
	if len(failed) > 0 {
		return fmt.Errorf("check: %d of %d checks failed", len(failed), len(cfg.Poll.Directions)+1)
	}
	return errors.Join(failed...)
}
