package publisher

import (
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
)

// javaPartition is the Java producer's choice for a keyed record, from
// kafkatest's murmur2, written independently of kafka-go's port (and checked
// there against Kafka's own test vectors).
func javaPartition(key string, partitions int) int {
	return kafkatest.JavaPartition([]byte(key), partitions)
}

func kafkaMessage(key string) kafka.Message { return kafka.Message{Key: []byte(key)} }

func TestBalancerAgreesWithJavaForEveryVDN(t *testing.T) {
	b := &kafka.Murmur2Balancer{}
	for _, n := range []int{1, 3, 12, 50} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for vdn := 1; vdn <= 5000; vdn++ {
			key := strconv.Itoa(vdn)
			if got, want := b.Balance(kafkaMessage(key), parts...), javaPartition(key, n); got != want {
				t.Fatalf("%d partitions, VDN %s: kafka-go %d, Java %d", n, key, got, want)
			}
		}
	}
}

func TestPartitionOfIsWhereJavaPutsAVDNsEvents(t *testing.T) {
	for _, n := range []int{1, 6, 12} {
		for vdn := 1; vdn <= 2000; vdn++ {
			if got, want := PartitionOf(vdn, n), javaPartition(strconv.Itoa(vdn), n); got != want {
				t.Fatalf("%d partitions, VDN %d: PartitionOf %d, Java %d", n, vdn, got, want)
			}
		}
	}
}
