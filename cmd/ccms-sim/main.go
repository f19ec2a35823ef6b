// Command ccms-sim serves the CC-CMS simulator (poller/ccmssim) on a port,
// for compose files and manual runs. See -help for every flag and its
// environment variable; a flag given on the command line wins over the
// environment, which wins over the default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is every setting; flags and CCMS_SIM_* variables fill it.
type config struct {
	addr       string
	tls        bool
	certDir    string
	certHosts  string
	ak         string
	sk         string
	skFile     string
	timezone   string
	ccID       int
	vdns       int
	traffic    string
	inProgress bool
	neverEnd   float64
	ingestMax  time.Duration
	filterOn   string
	faults     string
	seed       int64
	maxSkew    time.Duration
	sign       ccmssim.SignVariant
	logLevel   string
}

const defaultSK = "sim-sk"

// envNames maps each flag to its environment variable.
var envNames = map[string]string{
	"addr": "CCMS_SIM_ADDR", "tls": "CCMS_SIM_TLS", "cert-dir": "CCMS_SIM_CERT_DIR", "cert-hosts": "CCMS_SIM_CERT_HOSTS",
	"ak": "CCMS_SIM_AK", "sk": "CCMS_SIM_SK", "sk-file": "CCMS_SIM_SK_FILE", "timezone": "CCMS_SIM_TIMEZONE",
	"cc-id": "CCMS_SIM_CC_ID", "vdns": "CCMS_SIM_VDNS", "traffic": "CCMS_SIM_TRAFFIC",
	"in-progress": "CCMS_SIM_IN_PROGRESS", "never-end": "CCMS_SIM_NEVER_END", "ingest-delay-max": "CCMS_SIM_INGEST_DELAY_MAX",
	"filter-on": "CCMS_SIM_FILTER_ON", "faults": "CCMS_SIM_FAULTS", "seed": "CCMS_SIM_SEED",
	"max-skew": "CCMS_SIM_MAX_SKEW", "log-level": "CCMS_SIM_LOG_LEVEL",
	"sign-empty-query-line": "CCMS_SIM_SIGN_EMPTY_QUERY_LINE", "sign-blank-line-before-body": "CCMS_SIM_SIGN_BLANK_LINE_BEFORE_BODY",
	"sign-base64": "CCMS_SIM_SIGN_BASE64",
}

func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("ccms-sim", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8443", "listen address host:port (\":8443\" for every interface)")
	fs.BoolVar(&c.tls, "tls", true, "serve HTTPS with a self-signed certificate generated at start")
	fs.StringVar(&c.certDir, "cert-dir", "", "directory for "+ccmssim.CertFileName+", the certificate clients trust (default: a temporary directory removed at exit)")
	fs.StringVar(&c.certHosts, "cert-hosts", "", "extra comma-separated DNS names or IPs for the certificate (localhost and loopback are always in)")
	fs.StringVar(&c.ak, "ak", "sim-ak", "access key (AK) requests must be signed with")
	fs.StringVar(&c.sk, "sk", "", "secret key (SK); prefer -sk-file, command lines are visible to other users (default \""+defaultSK+"\")")
	fs.StringVar(&c.skFile, "sk-file", "", "file holding the SK (trailing newline ignored); excludes -sk")
	fs.StringVar(&c.timezone, "timezone", "UTC", "IANA time zone of the API's days (yesterday/today) and of the daily traffic cycle")
	fs.IntVar(&c.ccID, "cc-id", 1, "call center id served, 1..65535")
	fs.IntVar(&c.vdns, "vdns", 100, "number of VDNs (ids 1..N), at most 5000")
	fs.StringVar(&c.traffic, "traffic", "normal", "traffic level: quiet, normal or busy")
	fs.BoolVar(&c.inProgress, "in-progress", true, "list answered calls while they are still running (callEnd 0)")
	fs.Float64Var(&c.neverEnd, "never-end", 0, "share (0..1) of answered calls that never end: listed in progress (callEnd 0) forever; the oracle marks them \"neverEnds\"")
	fs.DurationVar(&c.ingestMax, "ingest-delay-max", 2*time.Minute, "longest delay between a call's end and its row's logDate")
	fs.StringVar(&c.filterOn, "filter-on", ccmssim.FilterCallBegin, "timestamp the window filters on: callBegin, waitBegin, callEnd or logDate")
	fs.StringVar(&c.faults, "faults", "", "faults to inject, e.g. 5xx=0.05,429=0.02,slow=0.01,timeout=0.001,truncate=0.01,malformed=0.01,resultcode=0.01,strings,ignore-offset,count-drift=2,retry-after=2s,slow-delay=3s; "+
		"and lies: poison=0.01 (unusable rows after that share of good rows; poison-kind="+poisonKinds()+" for one kind, every kind in turn by default), "+
		"count-per-page (count is the rows of the page), page-cap=50 (no page longer, whatever the limit)")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the generated traffic: the same seed gives the same calls")
	fs.DurationVar(&c.maxSkew, "max-skew", 15*time.Minute, "largest accepted difference between a signature's timestamp and the clock")
	fs.BoolVar(&c.sign.EmptyQueryLine, "sign-empty-query-line", false, "demand signatures with an empty query line, as the C2 demo's ports write (ccms-api.md A2)")
	fs.BoolVar(&c.sign.BlankLineBeforeBody, "sign-blank-line-before-body", false, "demand signatures with a blank line before the body (A4)")
	fs.BoolVar(&c.sign.Base64, "sign-base64", false, "demand Base64 signatures instead of hex (A4)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error (one info line per request)")
	return fs
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: ccms-sim [flags]

Serves a simulated Huawei CC-CMS querycalls API (POST /rest/cmsapp/v2/openapi/vdn/querycalls)
with auth-v2 signatures, and GET /sim/oracle?from=<ms>&to=<ms> listing every completed call.
On start it prints the URL and, with TLS, the path of the certificate file clients must trust.
SIGINT or SIGTERM stops it cleanly.

Every flag can also be set by an environment variable. A flag on the command line wins over
the variable, which wins over the default.

Flags:
`)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "  -%s\t%s\n      %s%s\n", f.Name, envNames[f.Name], f.Usage, def)
	})
}

// run is main without the process: exit code 0 on a clean stop (signal),
// 2 on a usage error, 1 on any other error.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	var c config
	fs := newFlagSet(&c)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, once, to the right stream
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return 0
		}
		usage(stderr, fs) // the flag package printed the error
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ccms-sim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := applyEnv(fs, lookup); err != nil {
		fmt.Fprintln(stderr, "ccms-sim:", err)
		return 2
	}
	if err := serve(ctx, c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "ccms-sim:", err)
		return 1
	}
	return 0
}

// applyEnv sets every flag not given on the command line from its
// environment variable, when that is set.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envNames[f.Name]
		v, ok := lookup(env)
		if given[f.Name] || !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
	})
	return errors.Join(errs...)
}

func serve(ctx context.Context, c config, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts, err := simOptions(c, logger)
	if err != nil {
		return err
	}
	sim, err := ccmssim.New(opts)
	if err != nil {
		return err
	}
	loc := opts.Location
	var hosts []string
	for h := range strings.SplitSeq(c.certHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	srv, err := ccmssim.StartServer(sim, ccmssim.ServerOptions{Addr: c.addr, TLS: c.tls, CertDir: c.certDir, Hosts: hosts})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ccms-sim: serving %s (ccId %d, VDNs 1..%d, AK %s, time zone %s, traffic %s)\n",
		srv.URL, c.ccID, c.vdns, c.ak, loc, c.traffic)
	if srv.CAFile != "" {
		fmt.Fprintf(stdout, "ccms-sim: certificate %s\n", srv.CAFile)
	}
	logger.Info("serving", "url", srv.URL, "ca_file", srv.CAFile, "faults", c.faults)

	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// simOptions turns the settings into the simulator's Options.
func simOptions(c config, logger *slog.Logger) (ccmssim.Options, error) {
	sk, err := secretKey(c)
	if err != nil {
		return ccmssim.Options{}, err
	}
	loc, err := time.LoadLocation(c.timezone)
	if err != nil {
		return ccmssim.Options{}, fmt.Errorf("timezone: %w", err)
	}
	traffic, err := trafficLevel(c.traffic)
	if err != nil {
		return ccmssim.Options{}, err
	}
	if c.neverEnd < 0 || c.neverEnd > 1 {
		return ccmssim.Options{}, fmt.Errorf("never-end %v: want a share in 0..1", c.neverEnd)
	}
	traffic.ListInProgress = c.inProgress
	traffic.NeverEndShare = c.neverEnd
	traffic.IngestDelayMax = c.ingestMax
	if c.ingestMax == 0 {
		traffic.IngestDelayMax = -1 // zero here means none; in Traffic it means the default
	}
	faults, err := ccmssim.ParseFaults(c.faults)
	if err != nil {
		return ccmssim.Options{}, fmt.Errorf("faults: %w", err)
	}
	return ccmssim.Options{
		AK: c.ak, SK: sk, CCID: c.ccID, VDNs: c.vdns, Location: loc, Seed: c.seed, MaxSkew: c.maxSkew, Sign: c.sign,
		Traffic: traffic, FilterOn: c.filterOn, Faults: faults, Logger: logger,
	}, nil
}

// poisonKinds lists the poison kinds for the help text.
func poisonKinds() string {
	names := make([]string, len(ccmssim.PoisonKinds))
	for i, k := range ccmssim.PoisonKinds {
		names[i] = string(k)
	}
	return strings.Join(names, "|")
}

// secretKey picks the SK from -sk / CCMS_SIM_SK or -sk-file / CCMS_SIM_SK_FILE.
func secretKey(c config) (string, error) {
	switch {
	case c.sk != "" && c.skFile != "":
		return "", errors.New("the SK is given twice: use -sk (CCMS_SIM_SK) or -sk-file (CCMS_SIM_SK_FILE), not both")
	case c.skFile != "":
		b, err := os.ReadFile(c.skFile)
		if err != nil {
			return "", fmt.Errorf("sk file: %w", err) // the path, never the content
		}
		sk := strings.TrimRight(string(b), "\r\n")
		if sk == "" {
			return "", fmt.Errorf("sk file %s is empty", c.skFile)
		}
		return sk, nil
	case c.sk != "":
		return c.sk, nil
	}
	return defaultSK, nil
}

// trafficLevel maps -traffic to a Traffic preset.
func trafficLevel(level string) (ccmssim.Traffic, error) {
	switch level {
	case "quiet":
		return ccmssim.Traffic{BusyShare: 0.02, BusyPerHour: 30, QuietPerHour: 0.5}, nil
	case "normal":
		return ccmssim.Traffic{}, nil // the library's realistic defaults
	case "busy":
		return ccmssim.Traffic{BusyShare: 0.2, BusyPerHour: 600, QuietPerHour: 10}, nil
	}
	return ccmssim.Traffic{}, fmt.Errorf("traffic %q: want quiet, normal or busy", level)
}
