package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// The benchmarks below measure the numbers the README quotes, on this
// machine, with the simulator and a real broker. They print; they assert
// nothing about time. Run them with
//
//	eval "$(scripts/kafka/start.sh)"
//	go test -run '^$' -bench 'Backfill|RunRSS' -benchtime 1x ./cmd/callpub/
//	scripts/kafka/stop.sh

// BenchmarkBackfill backfills a fixed set of more than 20,000 calls (200 VDNs
// x 2 directions, 6 hours) from the HTTPS simulator into a fresh 12-partition
// topic, with the production poll and sweep intervals, and reports events/s
// from start to the last commit, CC-CMS requests per event, and requests
// against the minimum: the sum over streams of max(1, ceil(calls of the
// stream/100)), one request per page a stream's calls fill. It then writes
// the same records with a bare kafka-go Writer set up like the publisher, in
// 100-record calls from 4 goroutines, and reports that ceiling and the
// backfill's share of it.
func BenchmarkBackfill(b *testing.B) { benchBackfill(b, finiteTraffic(0.15, 6), 20_000) }

// BenchmarkBackfillLarge is BenchmarkBackfill over more than 200,000 calls
// (every VDN busy, 8 hours), with the request budget not binding.
func BenchmarkBackfillLarge(b *testing.B) { benchBackfill(b, finiteTraffic(1, 8), 200_000) }

func benchBackfill(b *testing.B, traffic ccmssim.Traffic, least int) {
	brokers := kafkatest.Brokers(b)
	f := startSim(b, ccmssim.Options{VDNs: 200, Seed: 1, Traffic: traffic})
	want := oracleIDs(f, nil)
	if len(want) < least {
		b.Fatalf("the fixture holds %d calls, want at least %d", len(want), least)
	}
	minReqs := minRequests(f)
	var backfill, ceiling, reqs float64
	for b.Loop() {
		topic := kafkatest.Topic(b, brokers, 12)
		vars := f.vars(brokers, topic, b.TempDir(), "1-200")
		delete(vars, "CALLPUB_POLL_MAX_SPAN")
		maps.Copy(vars, map[string]string{"CALLPUB_POLL_INTERVAL": "30s", "CALLPUB_POLL_MAX_INTERVAL": "5m",
			"CALLPUB_SWEEP_INTERVAL": "15m", "CALLPUB_SWEEP_LOOKBACK": "6h"})
		before := f.sim.Requests()
		start := time.Now()
		s := startService(b, vars)
		s.waitCommitted(b, want, 10*time.Minute)
		events := s.committed()
		elapsed := time.Since(start)
		reqs = float64(f.sim.Requests() - before)
		s.stop(b)
		backfill = float64(len(want)) / elapsed.Seconds()

		msgs := make([]kafka.Message, len(events))
		ceilTopic := kafkatest.Topic(b, brokers, 12)
		for i, e := range events {
			v, err := json.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			msgs[i] = kafka.Message{Topic: ceilTopic, Key: []byte(e.PartitionKey), Value: v,
				Headers: []kafka.Header{{Key: "content-type", Value: []byte(schemas.ContentType)}}}
		}
		ceiling = rawWrite(b, brokers, msgs, 100, 4)
	}
	calls := float64(len(want))
	b.ReportMetric(calls, "calls")
	b.ReportMetric(backfill, "events/s")
	b.ReportMetric(reqs/calls, "requests/event")
	b.ReportMetric(reqs, "requests")
	b.ReportMetric(float64(minReqs), "min_requests")
	b.ReportMetric(reqs/float64(minReqs), "requests_vs_min")
	b.ReportMetric(ceiling, "kafka_ceiling_events/s")
	b.ReportMetric(backfill/ceiling, "backfill_vs_ceiling")
}

// minRequests is the fewest requests that can read every call of the
// fixture: per stream, one per page its calls fill, and one for a stream
// without calls.
func minRequests(f simFixture) int {
	now := f.sim.Now()
	perStream := map[string]int{}
	for v := 1; v <= 200; v++ {
		perStream[fmt.Sprint(v, true)], perStream[fmt.Sprint(v, false)] = 0, 0
	}
	for _, c := range f.sim.Oracle(poller.Horizon(now, ccms.Reach{Loc: f.sim.Location(), Boundary: ccms.BoundaryTenant}), now) {
		if !c.VisibleAt.After(now) {
			perStream[fmt.Sprint(c.VDN, c.Inbound)]++
		}
	}
	n := 0
	for _, calls := range perStream {
		n += max(1, (calls+99)/100)
	}
	return n
}

// rawWrite writes msgs with a kafka-go Writer configured like the publisher's
// (acks=all, murmur2, lz4, 5 ms batch timeout, 100-record batches), in
// synchronous calls of `page` records from `workers` goroutines, and returns
// acknowledged records per second.
func rawWrite(b *testing.B, brokers []string, msgs []kafka.Message, page, workers int) float64 {
	b.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		Compression: kafka.Lz4, BatchTimeout: 5 * time.Millisecond, BatchSize: 100, BatchBytes: 1 << 20,
		MaxAttempts: 3, WriteTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
	}
	defer w.Close()
	// One warm-up record: the writer's metadata and connections are set up
	// outside the timed part, as the service's are by its topic check.
	if err := w.WriteMessages(b.Context(), msgs[0]); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(page))) - page
				if lo >= len(msgs) {
					return
				}
				if err := w.WriteMessages(b.Context(), msgs[lo:min(lo+page, len(msgs))]...); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(msgs)) / elapsed.Seconds()
}

// BenchmarkRunRSS builds the real binary, runs `callpub run` for 5,000 VDNs
// x 2 directions (10,000 streams, START_AT=now) against the simulator until
// every stream finished a step (/status counts no stream unpolled), then two
// minutes more, with /metrics scraped every 15 s as Prometheus would, and reports the
// process's peak resident set (VmHWM), and its anonymous and file-backed
// (the binary, the store's mapping) resident sets at the end. It then times
// /status for one stream and for all of them. A SIGTERM must then stop it
// with exit code 0. It runs twice: with Go's default garbage collection
// (the heap may grow to twice what is live before a collection), and with
// GOMEMLIMIT=30MiB, the soft limit README recommends for 10,000 streams.
func BenchmarkRunRSS(b *testing.B) {
	const vdns = 5000
	brokers := kafkatest.Brokers(b)
	bin := filepath.Join(b.TempDir(), "callpub")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	f := startSim(b, ccmssim.Options{VDNs: vdns, Seed: 7})
	for _, limit := range []string{"off", "30MiB"} {
		b.Run("GOMEMLIMIT="+limit, func(b *testing.B) { benchRunRSS(b, bin, f, brokers, limit) })
	}
}

func benchRunRSS(b *testing.B, bin string, f simFixture, brokers []string, memLimit string) {
	const vdns = 5000
	var peak, rss, anon, file, secs, reqs, cores, steadyRPM, scrapeBytes float64
	var one, all statusTiming
	for b.Loop() {
		topic := kafkatest.Topic(b, brokers, 12)
		addr := freeAddr(b)
		vars := f.vars(brokers, topic, b.TempDir(), fmt.Sprintf("1-%d", vdns))
		for k, v := range map[string]string{
			"CALLPUB_START_AT": "now", "CALLPUB_CCMS_RATE": "500", "CALLPUB_HTTP_ADDR": addr,
			"CALLPUB_POLL_INTERVAL": "30s", "CALLPUB_POLL_MAX_INTERVAL": "5m", "CALLPUB_LOOKBACK": "15m",
			"CALLPUB_POLL_MAX_SPAN": "2h", "CALLPUB_SWEEP_INTERVAL": "15m", "CALLPUB_SWEEP_LOOKBACK": "6h",
			"CALLPUB_POLL_RETRY_BASE": "2s", "CALLPUB_POLL_RETRY_MAX": "1m", "GOMEMLIMIT": memLimit,
		} {
			vars[k] = v
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "run")
		cmd.Env = os.Environ()
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = &syncWriter{w: &out}, &syncWriter{w: &out}
		before := f.sim.Requests()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		scrapes := scrapeEvery(b, addr, 15*time.Second)
		waitAllStepped(b, cmd, addr, vdns*2, 5*time.Minute, &out)
		secs = time.Since(start).Seconds()
		reqs = float64(f.sim.Requests() - before)
		// Then two minutes of polling: the CPU it costs sizes the pod's request,
		// and the peak takes in the first sweeps (spread over the first 15
		// minutes; with START_AT=now a busy stream's re-reads 6 h of calls
		// never published, the heaviest turns of the run).
		cpu0, steadyStart, reqs0 := procCPUSeconds(b, cmd.Process.Pid), time.Now(), f.sim.Requests()
		<-time.After(2 * time.Minute) // the measurement period, not a synchronisation
		cores = (procCPUSeconds(b, cmd.Process.Pid) - cpu0) / time.Since(steadyStart).Seconds()
		steadyRPM = float64(f.sim.Requests()-reqs0) / time.Since(steadyStart).Minutes()
		scrapeBytes = scrapes.stop()
		peak = procKiB(b, cmd.Process.Pid, "VmHWM") / 1024
		rss = procKiB(b, cmd.Process.Pid, "VmRSS") / 1024
		anon = procKiB(b, cmd.Process.Pid, "RssAnon") / 1024
		file = procKiB(b, cmd.Process.Pid, "RssFile") / 1024
		one = timeStatus(b, addr, "stream=1/2500/in")
		all = timeStatus(b, addr, fmt.Sprintf("limit=%d", vdns*2))
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatalf("callpub run after SIGTERM: %v, want exit 0\n%s", err, lastLines(out.String(), 20))
		}
	}
	b.ReportMetric(vdns*2, "streams")
	b.ReportMetric(peak, "peak_rss_MiB")
	b.ReportMetric(rss, "rss_MiB")
	b.ReportMetric(anon, "rss_anon_MiB")
	b.ReportMetric(file, "rss_file_MiB")
	b.ReportMetric(scrapeBytes, "metrics_scrape_bytes")
	b.ReportMetric(one.ms, "status_one_ms")
	b.ReportMetric(one.bytes, "status_one_bytes")
	b.ReportMetric(all.ms, "status_all_ms")
	b.ReportMetric(all.bytes, "status_all_bytes")
	b.ReportMetric(secs, "s_to_all_stepped")
	b.ReportMetric(reqs, "requests_to_all_stepped")
	b.ReportMetric(cores, "steady_cpu_cores")
	b.ReportMetric(steadyRPM, "steady_req/min")
}

// procCPUSeconds is utime+stime of a process, from /proc/<pid>/stat.
func procCPUSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the ")" closing the command name; utime and stime are the 12th and 13th.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %q", pid, raw)
	}
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// waitAllStepped polls /status's summary every second until it counts
// `streams` streams and none of them unpolled (without a successful step
// yet), or fails after timeout or when the process exits.
func waitAllStepped(b *testing.B, cmd *exec.Cmd, addr string, streams int, timeout time.Duration, out *bytes.Buffer) {
	b.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	client := &http.Client{Timeout: 10 * time.Second}
	stepped := 0
	for {
		select {
		case <-deadline.C:
			b.Fatalf("%d of %d streams stepped after %v\n%s", stepped, streams, timeout, lastLines(out.String(), 20))
		case <-tick.C:
		}
		if cmd.ProcessState != nil || syscall.Kill(cmd.Process.Pid, 0) != nil {
			b.Fatalf("callpub run exited early\n%s", lastLines(out.String(), 20))
		}
		resp, err := client.Get("http://" + addr + "/status?limit=0")
		if err != nil {
			continue // not listening yet
		}
		var st struct {
			Streams  int `json:"streams"`
			Unpolled int `json:"streams_unpolled"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		_ = resp.Body.Close()
		if err != nil {
			b.Fatalf("/status: %v", err)
		}
		stepped = st.Streams - st.Unpolled
		if st.Streams == streams && st.Unpolled == 0 {
			return
		}
	}
}

// scraper fetches /metrics at an interval, as Prometheus does.
type scraper struct {
	stopped chan struct{}
	done    chan struct{}
	bytes   atomic.Int64 // of the last scrape
}

// scrapeEvery scrapes addr's /metrics every interval until stop.
func scrapeEvery(b *testing.B, addr string, interval time.Duration) *scraper {
	s := &scraper{stopped: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stopped:
				return
			case <-tick.C:
			}
			resp, err := client.Get("http://" + addr + "/metrics")
			if err != nil {
				continue // not listening yet
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			s.bytes.Store(n)
		}
	}()
	b.Cleanup(func() { _ = s.stop() })
	return s
}

// stop ends the scrapes and returns the size of the last one.
func (s *scraper) stop() float64 {
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
	<-s.done
	return float64(s.bytes.Load())
}

// statusTiming is the median latency and the size of one /status request.
type statusTiming struct{ ms, bytes float64 }

// timeStatus asks /status?query five times and returns the median latency
// and the answer's size.
func timeStatus(b *testing.B, addr, query string) statusTiming {
	b.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	var ms []float64
	var n int64
	for range 5 {
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/status?" + query)
		if err != nil {
			b.Fatal(err)
		}
		n, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("/status?%s: %d %v", query, resp.StatusCode, err)
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(ms)
	return statusTiming{ms: ms[len(ms)/2], bytes: float64(n)}
}

// procKiB reads a "Vm...: N kB" line of /proc/<pid>/status.
func procKiB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.Lines(string(raw)) {
		if name, rest, ok := strings.Cut(l, ":"); ok && name == field {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatalf("%s: %v", field, err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// freeAddr is a loopback address nobody listens on right now.
func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		b.Fatal(err)
	}
	return addr
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
