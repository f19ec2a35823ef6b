package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/callpub/callpub/poller"
)

// shard is this replica's share of the streams: i of n (0-based). The zero
// value (n == 0) owns everything.
type shard struct{ I, N int }

func (s shard) String() string {
	if s.N == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// parseShard reads "i/n" with 0 <= i < n; "" owns every stream.
func parseShard(v string) (shard, error) {
	if v == "" {
		return shard{}, nil
	}
	a, b, ok := strings.Cut(v, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || errors.Join(err1, err2) != nil || n < 1 || i < 0 || i >= n {
		return shard{}, fmt.Errorf("%q is not i/n with 0 <= i < n", v)
	}
	return shard{I: i, N: n}, nil
}

// shard resolves CALLPUB_SHARD, or CALLPUB_SHARDS with the ordinal of
// CALLPUB_POD_NAME (a StatefulSet pod "callpub-2" is shard 2).
func (c config) shard() (shard, error) {
	switch {
	case c.Shard != "" && c.Shards != 0:
		return shard{}, errors.New("CALLPUB_SHARD and CALLPUB_SHARDS are both set: use one")
	case c.Shards < 0:
		return shard{}, fmt.Errorf("CALLPUB_SHARDS: %d is negative", c.Shards)
	case c.Shards > 0:
		i := strings.LastIndexByte(c.PodName, '-')
		ord, err := strconv.Atoi(c.PodName[i+1:])
		if c.PodName == "" || err != nil || ord < 0 {
			return shard{}, fmt.Errorf("CALLPUB_POD_NAME: %q has no StatefulSet ordinal (want a name like callpub-2), needed with CALLPUB_SHARDS", c.PodName)
		}
		if ord >= c.Shards {
			return shard{}, fmt.Errorf("CALLPUB_POD_NAME: ordinal %d is not below CALLPUB_SHARDS=%d (scale the StatefulSet and SHARDS together)", ord, c.Shards)
		}
		return shard{I: ord, N: c.Shards}, nil
	}
	s, err := parseShard(c.Shard)
	if err != nil {
		return shard{}, fmt.Errorf("CALLPUB_SHARD: %w", err)
	}
	return s, nil
}

// owns reports whether the replica owns a stream. Both directions of a VDN
// go to the same shard: the hash covers (ccId, VDN) only, so one replica
// writes all of a VDN's events and per-VDN order holds.
func (s shard) owns(st poller.Stream) bool {
	if s.N <= 1 {
		return true
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%d", st.CCID, st.VDN)
	return int(h.Sum32()%uint32(s.N)) == s.I
}
