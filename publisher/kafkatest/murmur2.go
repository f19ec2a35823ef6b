package kafkatest

// JavaMurmur2 is the Java client's org.apache.kafka.common.utils.Utils.murmur2,
// written out from the algorithm (seed 0x9747b28c, m 0x5bd1e995, r 24), so tests
// do not trust kafka-go's implementation to check kafka-go.
func JavaMurmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// JavaPartition is what the Java producer's default partitioner picks for a
// non-null key: toPositive(murmur2(key)) % numPartitions.
func JavaPartition(key []byte, partitions int) int {
	return int(JavaMurmur2(key)&0x7fffffff) % partitions
}
