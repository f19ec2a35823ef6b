package kafkatest

import "github.com/twmb/franz-go/pkg/kfake"

// startFake starts kfake with one broker. Like the test broker, it does not
// auto-create topics (kfake's default).
func startFake() (*Broker, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, err
	}
	return &Broker{Addrs: c.ListenAddrs(), Kind: Fake, stop: c.Close}, nil
}
