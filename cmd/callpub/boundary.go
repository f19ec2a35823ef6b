package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
)

// boundaryDetector answers, for CALLPUB_CCMS_DAY_BOUNDARY_MODE=auto, whose
// midnight bounds the server's range (ccms-api.md A10), by asking the server
// (ccms.Client.ProbeBoundary) once at start and then daily, every minute
// while it has no answer, and makes the client — and with it the poller and
// the retention, which share its Reach — use the answer. Until there is
// one, the client uses both.
type boundaryDetector struct {
	client  *ccms.Client
	stream  poller.Stream // asked for: the first configured stream
	log     *slog.Logger
	mode    *prometheus.GaugeVec
	timeout time.Duration // bounds one probe, retries included
	found   ccms.DayBoundary
}

const (
	boundaryEvery = 24 * time.Hour
	boundaryRetry = time.Minute
)

func newBoundaryDetector(cfg config, client *ccms.Client, log *slog.Logger, reg prometheus.Registerer) (*boundaryDetector, error) {
	mode := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "callpub_ccms_day_boundary",
		Help: "1 for the rule in force for the API's allowed range: tenant, utc, or both (configured, or auto without an answer yet).",
	}, []string{"mode"})
	if err := reg.Register(mode); err != nil {
		return nil, err
	}
	d := &boundaryDetector{client: client, log: log, mode: mode, timeout: min(2*cfg.CCMS.Timeout, 15*time.Second),
		stream: poller.Stream{CCID: cfg.Poll.CCID, VDN: cfg.Poll.VDNs[0], Dir: cfg.Poll.Directions[0]}}
	d.show()
	return d, nil
}

// show sets the gauge to the rule in force.
func (d *boundaryDetector) show() {
	d.mode.Reset()
	d.mode.WithLabelValues(string(d.client.Reach().Mode())).Set(1)
}

// detect probes once, uses a conclusive answer and logs the outcome. It
// reports whether the answer was conclusive.
func (d *boundaryDetector) detect(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	p, err := d.client.ProbeBoundary(pctx, d.stream, d.client.Now())
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("could not ask CC-CMS whose midnight bounds its range; using both (the stricter reading) until it answers; "+
				"a stream starting meanwhile records the span both skips as a gap", "retry_in", boundaryRetry, "err", err)
		}
		return false
	}
	if d.found != "" && d.found != p.Mode {
		d.log.Warn("CC-CMS's day boundary changed", "was", d.found, "now", p.Mode)
	}
	if d.found != p.Mode {
		d.log.Info("CC-CMS day boundary detected", "mode", p.Mode, "zone", d.client.Location().String(),
			"asked", p.Asked, "answered", p.Accepted, "readings_apart", p.Apart.String())
	}
	d.found = p.Mode
	d.client.UseBoundary(p.Mode)
	d.show()
	return true
}

// run probes again daily (every minute while there is no answer) until ctx
// ends; it never fails the service.
func (d *boundaryDetector) run(ctx context.Context) error {
	for {
		wait := boundaryEvery
		if d.found == "" {
			wait = boundaryRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		d.detect(ctx)
	}
}
