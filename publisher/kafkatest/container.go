//go:build !nodocker

package kafkatest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
)

// The testcontainers Kafka module only supports confluentinc/confluent-local;
// 7.5.0 is the tag it documents and tests.
const defaultImage = "confluentinc/confluent-local:7.5.0"

// dockerHealthy does what testcontainers.SkipIfProviderIsNotHealthy does,
// without a *testing.T. With no engine it fails in about a millisecond.
func dockerHealthy(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return fmt.Errorf("no Docker engine: %w", err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("no Docker engine: %w", err)
	}
	return nil
}

func startContainer(ctx context.Context) (*Broker, error) {
	img := os.Getenv(EnvImage)
	if img == "" {
		img = defaultImage
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // includes the image pull
	defer cancel()
	ctr, err := tckafka.Run(ctx, img,
		// like the jar broker and kfake: tests create their topics
		testcontainers.WithEnv(map[string]string{"KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false"}))
	stop := func() { _ = testcontainers.TerminateContainer(ctr) } // nil-safe
	if err != nil {
		stop()
		return nil, err
	}
	addrs, err := ctr.Brokers(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	return &Broker{Addrs: addrs, Kind: Container, stop: stop}, nil
}
