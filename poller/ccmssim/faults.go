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
	ServerError float64 // HTTP 500/502/503/504
	RateLimit   float64 // HTTP 429 with Retry-After
	Slow        float64 // answer after SlowDelay
	Timeout     float64 // hold the request until its ctx ends (or TimeoutDelay, then 504)
	Truncate    float64 // cut a success body in half
	Malformed   float64 // a success body that is not JSON (an unquoted count key)
	ResultError float64 // HTTP 200, resultCode 0100001, string resultDesc

	RetryAfter   time.Duration // Retry-After of a 429, whole seconds; default 1s
	SlowDelay    time.Duration // default 2s
	TimeoutDelay time.Duration // default 60s

	NumbersAsStrings bool // every number in a success body as a numeric string
	IgnoreOffset     bool // pages always start at row 0
	CountDrift       int  // count off by a random amount in [-CountDrift, +CountDrift]
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
	if f.RetryAfter < 0 || f.SlowDelay < 0 || f.TimeoutDelay < 0 || f.CountDrift < 0 {
		return fmt.Errorf("ccmssim: negative fault setting")
	}
	return nil
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
// Probability kinds take a value in 0..1; strings and ignore-offset are
// switches (optionally =true/false); count-drift takes an integer;
// retry-after, slow-delay and timeout-delay take durations.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		prob := func(p *float64) error {
			v, err := strconv.ParseFloat(value, 64)
			if !hasValue || err != nil || v < 0 || v > 1 {
				return fmt.Errorf("fault %s needs a probability in 0..1, e.g. %s=0.05", name, name)
			}
			*p = v
			return nil
		}
		flag := func(b *bool) error {
			if !hasValue {
				*b = true
				return nil
			}
			v, err := strconv.ParseBool(value)
			if err != nil {
				return fmt.Errorf("fault %s: %q is not true or false", name, value)
			}
			*b = v
			return nil
		}
		dur := func(d *time.Duration) error {
			v, err := time.ParseDuration(value)
			if !hasValue || err != nil || v < 0 {
				return fmt.Errorf("fault %s needs a duration, e.g. %s=2s", name, name)
			}
			*d = v
			return nil
		}
		var err error
		switch name {
		case string(FaultServerError):
			err = prob(&f.ServerError)
		case string(FaultRateLimit):
			err = prob(&f.RateLimit)
		case string(FaultSlow):
			err = prob(&f.Slow)
		case string(FaultTimeout):
			err = prob(&f.Timeout)
		case string(FaultTruncate):
			err = prob(&f.Truncate)
		case string(FaultMalformed):
			err = prob(&f.Malformed)
		case string(FaultResultError):
			err = prob(&f.ResultError)
		case string(FaultNumbersAsStrings):
			err = flag(&f.NumbersAsStrings)
		case string(FaultIgnoreOffset):
			err = flag(&f.IgnoreOffset)
		case string(FaultCountDrift):
			n, perr := strconv.Atoi(value)
			if !hasValue || perr != nil || n < 0 {
				err = fmt.Errorf("fault count-drift needs a non-negative integer, e.g. count-drift=2")
			}
			f.CountDrift = n
		case "retry-after":
			err = dur(&f.RetryAfter)
		case "slow-delay":
			err = dur(&f.SlowDelay)
		case "timeout-delay":
			err = dur(&f.TimeoutDelay)
		default:
			err = fmt.Errorf("unknown fault %q", name)
		}
		if err != nil {
			return Faults{}, err
		}
	}
	return f, nil
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
	p.status = []int{500, 502, 503, 504}[s.rng.IntN(4)]
	p.cutEarly = s.rng.IntN(2) == 0
	return p
}

func newFaultRNG(seed int64) *rand.Rand {
	h := mix(uint64(seed) ^ 0xfa417)
	return rand.New(rand.NewPCG(h, mix(h)))
}
