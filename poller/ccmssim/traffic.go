package ccmssim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Traffic is generated per (VDN, direction, hour slot) from a PCG seeded by
// a hash of (Seed, VDN, direction, slot). A slot holds the calls that start
// waiting in that UTC hour. Everything about a call, including when its rows
// are written, is fixed at generation; the clock only decides what is
// visible. So the server and the oracle see the same calls, whatever order
// slots are generated in.

const slotMillis = int64(time.Hour / time.Millisecond)

// maxPerSlot keeps callId sequence numbers unique: seq = stream*10000 + index.
const maxPerSlot = 9999

// call is one generated call. Times are epoch ms; 0 means absent.
type call struct {
	id                 string
	callerNo, calleeNo string
	waitBegin          int64
	ackBegin           int64
	callBegin          int64
	callEnd            int64
	logDate            int64 // the completed row's write time: when it becomes visible; never for a call that never ends
	progressAt         int64 // the in-progress row's first write; 0: never listed in progress
	neverEnds          bool  // listed in progress forever: callEnd 0, logDate never reached
	callType           int
	leaveReason        int
	mediaType          int
	subMediaType       int
}

func (c *call) answered() bool { return c.callBegin != 0 }

type slotKey struct {
	vdn     int
	inbound bool
	slot    int64
}

// slotCache keeps recently generated slots. It is bounded by the number of
// calls it holds (about 200 bytes each): when full it starts again empty,
// which costs only regeneration.
type slotCache struct {
	mu    sync.Mutex
	m     map[slotKey][]call
	calls int
}

const (
	slotCacheMax      = 8192    // slots
	slotCacheMaxCalls = 250_000 // about 50 MB
)

func (c *slotCache) get(k slotKey) ([]call, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *slotCache) put(k slotKey, v []call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= slotCacheMax || c.calls+len(v) > slotCacheMaxCalls {
		c.m = make(map[slotKey][]call, 256)
		c.calls = 0
	}
	c.m[k] = v
	c.calls += len(v)
}

// splitmix64 finaliser: a good 64-bit mixer for seeding.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

func dirBit(inbound bool) uint64 {
	if inbound {
		return 0
	}
	return 1
}

// busy reports whether vdn is one of the busy VDNs. VDN 1 always is, so
// tests have a busy VDN at hand whatever the seed.
func (s *settings) busy(vdn int) bool {
	if s.busyShare <= 0 {
		return false
	}
	return vdn == 1 || unit(mix(s.seed^mix(uint64(vdn)<<8|0x51))) < s.busyShare
}

// perHour is the mean arrival rate of a stream over a day.
func (s *settings) perHour(vdn int, inbound bool) float64 {
	base := s.quietPerHour
	if s.busy(vdn) {
		base = s.busyPerHour
	}
	// Each VDN gets its own factor in [0.5, 1.5), so rates differ within a class too.
	r := base * (0.5 + unit(mix(s.seed^mix(uint64(vdn)<<8|0x52))))
	if !inbound {
		r *= s.outboundRatio
	}
	return r
}

// daily is the relative arrival rate per local hour; its mean is 1.
var daily = func() [24]float64 {
	w := [24]float64{0.15, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.3, 1.7, 1.9, 1.8,
		1.4, 1.6, 1.8, 1.8, 1.6, 1.3, 1.0, 0.8, 0.6, 0.5, 0.35, 0.2}
	var sum float64
	for _, v := range w {
		sum += v
	}
	for i := range w {
		w[i] *= 24 / sum
	}
	return w
}()

func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda < 30 {
		limit, p, k := math.Exp(-lambda), 1.0, 0
		for {
			p *= r.Float64()
			if p <= limit {
				return k
			}
			k++
		}
	}
	n := math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64())
	return int(max(n, 0))
}

// slot returns the calls of one stream that start waiting in one hour slot,
// sorted by waitBegin.
func (s *Sim) slot(k slotKey) []call {
	if v, ok := s.cache.get(k); ok {
		return v
	}
	v := s.set.generate(k)
	s.cache.put(k, v)
	return v
}

func (s *settings) generate(k slotKey) []call {
	start := k.slot * slotMillis
	if s.stop != 0 && start >= s.stop || s.start != 0 && start+slotMillis <= s.start {
		return nil
	}
	h := mix(s.seed ^ mix(uint64(k.vdn)<<1|dirBit(k.inbound)) ^ mix(uint64(k.slot)+0x5eed))
	r := rand.New(rand.NewPCG(h, mix(h)))

	lambda := s.perHour(k.vdn, k.inbound)
	if !s.flat {
		lambda *= daily[time.UnixMilli(start).In(s.loc).Hour()]
	}
	n := min(poisson(r, lambda), maxPerSlot)
	arrivals := make([]int64, n)
	for i := range arrivals {
		arrivals[i] = start + r.Int64N(slotMillis)
	}
	slices.Sort(arrivals)

	stream := (k.vdn-1)*2 + int(dirBit(k.inbound))
	vdnNo := strconv.Itoa(4000000 + k.vdn)
	calls := make([]call, 0, n)
	for i, at := range arrivals {
		c := s.newCall(r, k.inbound, at, vdnNo)
		c.id = strconv.FormatInt(at/1000, 10) + "-" + strconv.Itoa(stream*10000+i)
		if s.start != 0 && at < s.start || s.stop != 0 && at >= s.stop {
			continue // drawn anyway, so the other calls do not depend on Start/Stop
		}
		s.maybeNeverEnd(&c)
		calls = append(calls, c)
	}
	return calls
}

// newCall draws one call. It always draws the same number of values, so
// one call's settings never shift the next call's randomness.
func (s *settings) newCall(r *rand.Rand, inbound bool, at int64, vdnNo string) call {
	var u [12]float64
	for i := range u {
		u[i] = r.Float64()
	}
	customer := strconv.FormatUint(13000000000+r.Uint64N(6999999999), 10)
	norm := r.NormFloat64()

	c := call{waitBegin: at, mediaType: 5}
	if inbound {
		c.callerNo, c.calleeNo = customer, vdnNo
		c.callType = pick(u[0], []int{0, 5, 1}, []float64{0.85, 0.10, 0.05})
		switch {
		case u[1] < 0.08:
			c.mediaType = 53
			c.subMediaType = pick(u[2], []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
				[]float64{0.35, 0.25, 0.05, 0.1, 0.08, 0.03, 0.04, 0.04, 0.03, 0.03})
		case u[1] < 0.12:
			c.mediaType = 19
		}
	} else {
		c.callerNo, c.calleeNo = vdnNo, customer
		c.callType = pick(u[0], []int{7, 8, 43, 44, 10, 6}, []float64{0.5, 0.15, 0.15, 0.1, 0.05, 0.05})
		if u[1] < 0.05 {
			c.mediaType = 19
		}
	}

	wait := ms(expo(u[3], s.meanWait))
	if !inbound {
		wait = 3000 + int64(u[3]*37000) // ringing
	}
	wait = min(wait, ms(maxWait))
	talk := ms(time.Duration(float64(s.meanTalk) * math.Exp(0.8*norm-0.32)))
	talk = min(max(talk, 5000), ms(maxNormalTalk))
	long := u[5] < s.longShare
	if long {
		talk = ms(time.Hour) + int64(u[6]*float64(ms(s.longMax-time.Hour)))
	}

	missed := inbound && u[4] < s.abandonShare || !inbound && u[4] < s.noAnswerShare
	if missed {
		c.callEnd = at + wait // the caller hangs up, or the callee never answers
		if inbound {
			c.leaveReason = pick(u[7], []int{89, 3, 2, 25}, []float64{0.8, 0.08, 0.07, 0.05})
		} else {
			c.leaveReason = pick(u[7], []int{26, 20, 27, 22, 24}, []float64{0.55, 0.2, 0.1, 0.1, 0.05})
			if c.leaveReason != 26 {
				c.callEnd = at + min(wait, 4000) // busy, rejected, off or unknown: fails fast
			}
		}
	} else {
		c.ackBegin = at + wait
		c.callBegin = c.ackBegin + int64(u[8]*2000)
		c.callEnd = c.callBegin + talk
		if inbound {
			c.leaveReason = pick(u[7], []int{88, 16, 15, 17, 0}, []float64{0.4, 0.35, 0.1, 0.1, 0.05})
		} else {
			c.leaveReason = pick(u[7], []int{15, 16}, []float64{0.55, 0.45})
		}
	}
	// Ingestion delay: mostly short, with a tail up to the maximum.
	c.logDate = c.callEnd + int64(u[9]*u[9]*float64(ms(s.ingestMax)))
	if s.listInProgress && c.answered() && (long || u[10] < s.inProgressShare) {
		first := c.callBegin + 1000 + int64(u[11]*float64(ms(maxFirstWrite)-1000))
		if first < c.logDate {
			c.progressAt = first
		}
	}
	return c
}

// maybeNeverEnd makes NeverEndShare of the answered calls never end. The
// choice hashes the callId and draws nothing, so the share changes no other
// call.
func (s *settings) maybeNeverEnd(c *call) {
	if s.neverEndShare <= 0 || !c.answered() {
		return
	}
	h := mix(s.seed ^ hashString(c.id) ^ 0xe4d)
	if unit(h) >= s.neverEndShare {
		return
	}
	c.neverEnds = true
	c.callEnd, c.leaveReason = 0, 0
	c.logDate = math.MaxInt64
	c.progressAt = c.callBegin + 1000 + int64(mix(h)%uint64(ms(maxFirstWrite)-1000))
}

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

func expo(u float64, mean time.Duration) time.Duration {
	return time.Duration(-math.Log(1-u) * float64(mean))
}

// pick chooses values[i] with the given weights (summing to about 1).
func pick(u float64, values []int, weights []float64) int {
	for i, w := range weights {
		if u < w {
			return values[i]
		}
		u -= w
	}
	return values[len(values)-1]
}
