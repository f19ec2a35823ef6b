package ccmssim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Faults are injected into querycalls requests that passed authentication
// and validation. Probabilities are drawn independently per request; when
// several hit, the first in FaultKind order that ends the request wins
// (timeout, 5xx, 429, resultcode), slow delays whatever follows, and
// malformed and truncate rewrite a success body.
type Faults struct {
	ServerError float64 // HTTP 500/502/503/504 (ServerStatus)
	RateLimit   float64 // HTTP 429 with Retry-After
	Slow        float64 // answer after SlowDelay
	Timeout     float64 // hold the request until its ctx ends (or TimeoutDelay, then 504)
	Truncate    float64 // cut a success body in half
	Malformed   float64 // a success body that is not JSON (an unquoted count key)
	ResultError float64 // HTTP 200, resultCode 0100001, string resultDesc

	RetryAfter   time.Duration // Retry-After of a 429, whole seconds; default 1s
	SlowDelay    time.Duration // default 2s
	TimeoutDelay time.Duration // default 60s
	// ServerStatus is the status of a ServerError: 500..599, or 0 for one of
	// 500, 502, 503 and 504 drawn per request.
	ServerStatus int

	NumbersAsStrings bool // every number in a success body as a numeric string
	IgnoreOffset     bool // pages always start at row 0
	CountDrift       int  // count off by a random amount in [-CountDrift, +CountDrift]

	// Poison is the share (0..1) of good rows followed by an unusable row of
	// PoisonKind (every kind in turn when ""). A poison row is an extra row,
	// in count and in paging like any other, never a call of the oracle; its
	// callId, when it has one, ends in "-poison". Which rows are followed by
	// one is a pure function of (Seed, callId), so paging stays stable.
	Poison     float64
	PoisonKind PoisonKind
	// CountPerPage makes count the rows of the page returned, not the rows of
	// the query: a server that misreads "count".
	CountPerPage bool
	// PageCap > 0 caps every page at that many rows whatever the limit asked
	// (a server with its own smaller page size); count stays the total.
	PageCap int
}

// FaultKind names one fault, for FailNext and ParseFaults.
type FaultKind string

// Fault kinds, in the order they take precedence.
const (
	FaultTimeout          FaultKind = "timeout"
	FaultServerError      FaultKind = "5xx"
	FaultRateLimit        FaultKind = "429"
	FaultResultError      FaultKind = "resultcode"
	FaultSlow             FaultKind = "slow"
	FaultMalformed        FaultKind = "malformed"
	FaultTruncate         FaultKind = "truncate"
	FaultNumbersAsStrings FaultKind = "strings"
	FaultIgnoreOffset     FaultKind = "ignore-offset"
	FaultCountDrift       FaultKind = "count-drift" // forced: count + max(CountDrift, 1)
)

// FaultKinds lists every kind in precedence order.
var FaultKinds = []FaultKind{FaultTimeout, FaultServerError, FaultRateLimit, FaultResultError, FaultSlow,
	FaultMalformed, FaultTruncate, FaultNumbersAsStrings, FaultIgnoreOffset, FaultCountDrift}

func (f Faults) validate() error {
	for k, p := range f.probabilities() {
		if p < 0 || p > 1 {
			return fmt.Errorf("ccmssim: fault %s probability %v outside 0..1", FaultKinds[k], p)
		}
	}
	if f.RetryAfter < 0 || f.SlowDelay < 0 || f.TimeoutDelay < 0 || f.CountDrift < 0 || f.PageCap < 0 {
		return fmt.Errorf("ccmssim: negative fault setting")
	}
	if f.ServerStatus != 0 && (f.ServerStatus < 500 || f.ServerStatus > 599) {
		return fmt.Errorf("ccmssim: fault server status %d outside 500..599", f.ServerStatus)
	}
	return checkPoison(f)
}

// probabilities is indexed like FaultKinds.
func (f Faults) probabilities() []float64 {
	return []float64{f.Timeout, f.ServerError, f.RateLimit, f.ResultError, f.Slow, f.Malformed, f.Truncate}
}

func (f Faults) withDefaults() Faults {
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	if f.SlowDelay <= 0 {
		f.SlowDelay = 2 * time.Second
	}
	if f.TimeoutDelay <= 0 {
		f.TimeoutDelay = time.Minute
	}
	return f
}

// ParseFaults reads a comma-separated list such as
// "5xx=0.05,429=0.02,slow=0.01,truncate=0.01,malformed=0.01,resultcode=0.01,strings,ignore-offset,count-drift=2".
// Probability kinds take a value in 0..1; strings, ignore-offset and
// count-per-page are switches (optionally =true/false); count-drift and
// page-cap take a non-negative integer; retry-after, slow-delay and
// timeout-delay take durations; 5xx-status takes a status in 500..599;
// poison takes a share in 0..1 and poison-kind one of PoisonKinds.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		set, ok := f.setters()[name]
		if !ok {
			return Faults{}, fmt.Errorf("unknown fault %q", name)
		}
		if err := set(value, hasValue); err != nil {
			return Faults{}, fmt.Errorf("fault %s: %w", name, err)
		}
	}
	if err := f.validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

// setter sets one field of Faults from a ParseFaults item's value.
type setter func(value string, hasValue bool) error

// setters maps each ParseFaults name to the setter of its field.
func (f *Faults) setters() map[string]setter {
	return map[string]setter{
		string(FaultServerError):      setProbability(&f.ServerError),
		string(FaultRateLimit):        setProbability(&f.RateLimit),
		string(FaultSlow):             setProbability(&f.Slow),
		string(FaultTimeout):          setProbability(&f.Timeout),
		string(FaultTruncate):         setProbability(&f.Truncate),
		string(FaultMalformed):        setProbability(&f.Malformed),
		string(FaultResultError):      setProbability(&f.ResultError),
		string(FaultNumbersAsStrings): setFlag(&f.NumbersAsStrings),
		string(FaultIgnoreOffset):     setFlag(&f.IgnoreOffset),
		string(FaultCountDrift):       setCount(&f.CountDrift),
		"retry-after":                 setDuration(&f.RetryAfter),
		"slow-delay":                  setDuration(&f.SlowDelay),
		"timeout-delay":               setDuration(&f.TimeoutDelay),
		"5xx-status":                  setCount(&f.ServerStatus),
		"poison":                      setProbability(&f.Poison),
		"poison-kind":                 func(value string, _ bool) error { f.PoisonKind = PoisonKind(value); return nil },
		"count-per-page":              setFlag(&f.CountPerPage),
		"page-cap":                    setCount(&f.PageCap),
	}
}

func setProbability(p *float64) setter {
	return func(value string, hasValue bool) error {
		v, err := strconv.ParseFloat(value, 64)
		if !hasValue || err != nil || v < 0 || v > 1 {
			return fmt.Errorf("needs a probability in 0..1, e.g. 0.05")
		}
		*p = v
		return nil
	}
}

func setFlag(b *bool) setter {
	return func(value string, hasValue bool) error {
		v, err := strconv.ParseBool(value)
		if hasValue && err != nil {
			return fmt.Errorf("%q is not true or false", value)
		}
		*b = !hasValue || v
		return nil
	}
}

func setCount(n *int) setter {
	return func(value string, hasValue bool) error {
		v, err := strconv.Atoi(value)
		if !hasValue || err != nil || v < 0 {
			return fmt.Errorf("needs a non-negative integer, e.g. 2")
		}
		*n = v
		return nil
	}
}

func setDuration(d *time.Duration) setter {
	return func(value string, hasValue bool) error {
		v, err := time.ParseDuration(value)
		if !hasValue || err != nil || v < 0 {
			return fmt.Errorf("needs a duration, e.g. 2s")
		}
		*d = v
		return nil
	}
}

// plan is what one request suffers.
type plan struct {
	kinds    []FaultKind // applied, for the log
	terminal FaultKind   // timeout, 5xx, 429, resultcode, or ""
	slow     bool
	rewrite  FaultKind // malformed, truncate, or ""
	strings  bool
	ignore   bool
	drift    int
	status   int // for 5xx
	faults   Faults
	cutEarly bool // truncate: declare the full Content-Length and cut the connection
}

// SetFaults replaces the fault settings. Forced faults (FailNext) are kept.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f.withDefaults()
	s.mu.Unlock()
}

// FailNext forces kind on each of the next n querycalls requests that pass
// authentication and validation, on top of the probabilistic faults. Calls
// add up; n <= 0 clears the kind.
func (s *Sim) FailNext(kind FaultKind, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.forced, kind)
		return
	}
	s.forced[kind] += n
}

// planFaults draws the faults of one request and uses up forced ones.
func (s *Sim) planFaults() plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	p := plan{faults: f, strings: f.NumbersAsStrings, ignore: f.IgnoreOffset}
	hit := make(map[FaultKind]bool)
	for _, k := range FaultKinds {
		if s.forced[k] > 0 {
			hit[k] = true
			if s.forced[k]--; s.forced[k] == 0 {
				delete(s.forced, k)
			}
		}
	}
	for i, prob := range f.probabilities() {
		if prob > 0 && s.rng.Float64() < prob {
			hit[FaultKinds[i]] = true
		}
	}
	if f.CountDrift > 0 {
		p.drift = s.rng.IntN(2*f.CountDrift+1) - f.CountDrift
	}
	if hit[FaultCountDrift] {
		p.drift = max(f.CountDrift, 1)
	}
	p.strings = p.strings || hit[FaultNumbersAsStrings]
	p.ignore = p.ignore || hit[FaultIgnoreOffset]
	p.slow = hit[FaultSlow]
	for _, k := range FaultKinds {
		if !hit[k] {
			continue
		}
		p.kinds = append(p.kinds, k)
		switch k {
		case FaultTimeout, FaultServerError, FaultRateLimit, FaultResultError:
			if p.terminal == "" {
				p.terminal = k
			}
		case FaultMalformed, FaultTruncate:
			if p.rewrite == "" {
				p.rewrite = k
			}
		}
	}
	p.status = []int{500, 502, 503, 504}[s.rng.IntN(4)] // drawn always, so one setting does not shift the others' draws
	if f.ServerStatus != 0 {
		p.status = f.ServerStatus
	}
	p.cutEarly = s.rng.IntN(2) == 0
	return p
}

func newFaultRNG(seed int64) *rand.Rand {
	h := mix(uint64(seed) ^ 0xfa417)
	return rand.New(rand.NewPCG(h, mix(h)))
}
