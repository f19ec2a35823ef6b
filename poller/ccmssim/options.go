package ccmssim

import (
	"fmt"
	"log/slog"
	"time"
)

// Filter times: which timestamp a query's [beginDate, endDate] is matched
// against (ccms-api.md A11 leaves it open, so it is a setting).
const (
	FilterCallBegin = "callBegin" // default; a call never answered falls back to waitBegin
	FilterWaitBegin = "waitBegin"
	FilterCallEnd   = "callEnd" // in-progress rows (callEnd 0) never match
	FilterLogDate   = "logDate" // the row's write time: an in-progress row moves when it completes
)

// Options configures a Sim. Zero values give the defaults named on each field.
type Options struct {
	AK, SK string // required; requests must be signed with them
	CCID   int    // the call center served, 1..65535; required
	VDNs   int    // VDN ids 1..VDNs exist, 1..5000; required

	// Location is the API's time zone: "yesterday" and "today" are days in
	// it, and the daily traffic cycle follows its hours. Default UTC.
	Location *time.Location
	Seed     int64
	Clock    Clock         // default the system clock
	MaxSkew  time.Duration // largest |signature timestamp - clock| accepted; default 15m
	Sign     SignVariant   // the one auth-v2 variant accepted; default Huawei's algorithm

	Traffic  Traffic
	FilterOn string // FilterCallBegin (default), FilterWaitBegin, FilterCallEnd or FilterLogDate
	Faults   Faults // initial faults; change them with SetFaults and FailNext

	// Logger gets one Info line per querycalls request. Default: discard.
	Logger *slog.Logger
}

// Traffic shapes the generated calls. Its zero value gives a realistic mix:
// about 5% busy VDNs, the rest quiet, a daily cycle, abandoned and
// unanswered calls, an ingestion delay of up to 2 minutes and 1% long calls.
// Shares are probabilities in [0, 1]; a negative share or duration means
// zero where zero would otherwise pick the default.
type Traffic struct {
	BusyShare     float64 // share of busy VDNs (VDN 1 is always busy unless negative); default 0.05
	BusyPerHour   float64 // mean inbound calls per hour on a busy VDN over a day; default 120
	QuietPerHour  float64 // the same for a quiet VDN; default 2
	OutboundRatio float64 // outbound arrivals relative to inbound; default 0.5
	Flat          bool    // no daily cycle: the same rate every hour

	AbandonShare  float64       // inbound calls hung up or dropped before an answer; default 0.12
	NoAnswerShare float64       // outbound calls never answered; default 0.3
	MeanWait      time.Duration // mean inbound queue wait; default 40s (at most 10m)
	MeanTalk      time.Duration // typical talk time; default 4m (at most 50m)
	LongCallShare float64       // answered calls that last 1h..LongCallMax; default 0.01
	LongCallMax   time.Duration // default 4h

	// IngestDelayMax bounds the delay between a call's end and the write of
	// its completed row (logDate). Default 2m; negative: written at callEnd.
	IngestDelayMax time.Duration

	// ListInProgress lists answered calls while they are still running
	// (callEnd 0): every long call and InProgressShare of the others whose
	// talk outlasts the first write.
	ListInProgress  bool
	InProgressShare float64 // default 0.5

	// NeverEndShare is the share of answered calls that never end: from
	// their first write on they are listed in progress (callEnd 0) forever,
	// whatever ListInProgress says. The oracle lists them with NeverEnds set.
	// Default 0.
	NeverEndShare float64

	Start time.Time // no call starts waiting before Start (zero: no limit)
	Stop  time.Time // no call starts waiting at or after Stop (zero: no limit)
}

const (
	maxWait       = 10 * time.Minute // longest wait or ring before answer or hang-up
	maxNormalTalk = 50 * time.Minute
	maxFirstWrite = 30 * time.Second // in-progress row written this long after callBegin at most
)

// settings are the resolved Options the simulator works with.
type settings struct {
	ak, sk   string
	ccID     int
	vdns     int
	loc      *time.Location
	seed     uint64
	clock    Clock
	maxSkew  time.Duration
	sign     SignVariant
	filterOn string
	logger   *slog.Logger

	busyShare, busyPerHour, quietPerHour, outboundRatio float64
	flat                                                bool
	abandonShare, noAnswerShare                         float64
	meanWait, meanTalk                                  time.Duration
	longShare                                           float64
	longMax                                             time.Duration
	ingestMax                                           time.Duration
	listInProgress                                      bool
	inProgressShare                                     float64
	neverEndShare                                       float64
	start, stop                                         int64 // epoch ms; 0: none
}

func resolve(o Options) (settings, error) {
	s := settings{ak: o.AK, sk: o.SK, ccID: o.CCID, vdns: o.VDNs, loc: o.Location, seed: uint64(o.Seed),
		clock: o.Clock, maxSkew: o.MaxSkew, sign: o.Sign, filterOn: o.FilterOn, logger: o.Logger}
	switch {
	case o.AK == "" || o.SK == "":
		return s, fmt.Errorf("ccmssim: AK and SK are required")
	case o.CCID < 1 || o.CCID > 65535:
		return s, fmt.Errorf("ccmssim: ccId %d outside 1..65535", o.CCID)
	case o.VDNs < 1 || o.VDNs > 5000:
		return s, fmt.Errorf("ccmssim: VDNs %d outside 1..5000", o.VDNs)
	case o.MaxSkew < 0:
		return s, fmt.Errorf("ccmssim: negative max skew %v", o.MaxSkew)
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.maxSkew == 0 {
		s.maxSkew = 15 * time.Minute
	}
	switch s.filterOn {
	case "":
		s.filterOn = FilterCallBegin
	case FilterCallBegin, FilterWaitBegin, FilterCallEnd, FilterLogDate:
	default:
		return s, fmt.Errorf("ccmssim: unknown filter time %q (want callBegin, waitBegin, callEnd or logDate)", o.FilterOn)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if err := o.Faults.validate(); err != nil {
		return s, err
	}

	s.resolveTraffic(o.Traffic)
	return s, nil
}

// resolveTraffic sets the traffic settings from t, defaults filled in.
func (s *settings) resolveTraffic(t Traffic) {
	s.busyShare = share(t.BusyShare, 0.05)
	s.busyPerHour = rate(t.BusyPerHour, 120)
	s.quietPerHour = rate(t.QuietPerHour, 2)
	s.outboundRatio = rate(t.OutboundRatio, 0.5)
	s.flat = t.Flat
	s.abandonShare = share(t.AbandonShare, 0.12)
	s.noAnswerShare = share(t.NoAnswerShare, 0.3)
	s.meanWait = min(duration(t.MeanWait, 40*time.Second), maxWait)
	s.meanTalk = min(duration(t.MeanTalk, 4*time.Minute), maxNormalTalk)
	s.longShare = share(t.LongCallShare, 0.01)
	s.longMax = max(duration(t.LongCallMax, 4*time.Hour), time.Hour)
	s.ingestMax = duration(t.IngestDelayMax, 2*time.Minute)
	s.listInProgress = t.ListInProgress
	s.inProgressShare = share(t.InProgressShare, 0.5)
	s.neverEndShare = share(t.NeverEndShare, 0)
	if !t.Start.IsZero() {
		s.start = t.Start.UnixMilli()
	}
	if !t.Stop.IsZero() {
		s.stop = t.Stop.UnixMilli()
	}
}

func share(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	case v > 1:
		return 1
	}
	return v
}

func rate(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func duration(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// lookback is how far a row's filter time can lie after its waitBegin: the
// slots that can hold rows for a window start this much before it.
func (s *settings) lookback() time.Duration {
	switch s.filterOn {
	case FilterWaitBegin:
		return 0
	case FilterCallBegin:
		return maxWait + 2*time.Second
	default: // callEnd, logDate
		return maxWait + 2*time.Second + max(s.longMax, maxNormalTalk) + s.ingestMax + maxFirstWrite
	}
}
