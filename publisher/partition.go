package publisher

import (
	"strconv"

	"github.com/segmentio/kafka-go"
)

// PartitionOf is the partition of a topic of n partitions that a VDN's
// events go to: murmur2 of its key, as the writer (and Java's default
// partitioner) computes it. In group mode it is the work slot of the VDN.
func PartitionOf(vdn, n int) int {
	if n <= 1 {
		return 0
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(strconv.Itoa(vdn))}, parts...)
}
