package publisher

import (
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
)

// javaMurmur2 is org.apache.kafka.common.utils.Utils.murmur2, written from
// the Java source with Java's signed 32-bit arithmetic, independently of
// kafka-go's port, so the tests can check where records land.
func javaMurmur2(data []byte) int32 {
	length := int32(len(data))
	const seed = int32(-1756908916) // 0x9747b28c
	const m = int32(0x5bd1e995)
	const r = 24
	ushr := func(x int32, n uint) int32 { return int32(uint32(x) >> n) } // Java's >>>
	h := seed ^ length
	length4 := length / 4
	for i := int32(0); i < length4; i++ {
		i4 := i * 4
		k := int32(data[i4]) + int32(data[i4+1])<<8 + int32(data[i4+2])<<16 + int32(data[i4+3])<<24
		k *= m
		k ^= ushr(k, r)
		k *= m
		h *= m
		h ^= k
	}
	rest := length &^ 3
	switch length % 4 {
	case 3:
		h ^= int32(data[rest+2]) << 16
		fallthrough
	case 2:
		h ^= int32(data[rest+1]) << 8
		fallthrough
	case 1:
		h ^= int32(data[rest])
		h *= m
	}
	h ^= ushr(h, 13)
	h *= m
	h ^= ushr(h, 15)
	return h
}

// javaPartition is the Java producer's choice for a keyed record:
// toPositive(murmur2(key)) % numPartitions.
func javaPartition(key string, partitions int) int {
	return int(javaMurmur2([]byte(key))&0x7fffffff) % partitions
}

func kafkaMessage(key string) kafka.Message { return kafka.Message{Key: []byte(key)} }

// The vectors of Kafka's own UtilsTest.testMurmur2.
func TestJavaMurmur2MatchesKafkasTestVectors(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, tt := range tests {
		if got := javaMurmur2([]byte(tt.in)); got != tt.want {
			t.Errorf("murmur2(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

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
