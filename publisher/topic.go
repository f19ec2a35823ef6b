package publisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// TopicInfo describes the topics CheckTopic found.
type TopicInfo struct {
	Topic      string
	Partitions int
	// ControlTopic and ControlPartitions are set when a control topic is
	// configured.
	ControlTopic      string
	ControlPartitions int
	// DLQTopic and DLQPartitions are set when a dead-letter topic is
	// configured.
	DLQTopic      string
	DLQPartitions int
}

// CheckTopic asks the brokers for the call topic (and the control and
// dead-letter topics, when set) and returns their partition counts, or a *TopicError that says what is
// wrong: `kafka topic "x" does not exist on brokers a,b: create it
// (auto-creation is off)`. It uses a Metadata request through kafka.Client,
// which never creates a topic (kafka.Conn.ReadPartitions would, on a broker
// that allows auto-creation), on a fresh connection so that the answer is
// current. Used by `callpub check` and at start-up.
func (p *Publisher) CheckTopic(ctx context.Context) (TopicInfo, error) {
	transport, err := p.cfg.transport()
	if err != nil {
		return TopicInfo{}, fmt.Errorf("kafka config: %w", err)
	}
	defer transport.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(p.cfg.Brokers...), Timeout: p.cfg.WriteTimeout, Transport: transport}
	topics := p.cfg.topics()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return TopicInfo{}, fmt.Errorf("kafka metadata from brokers %s: %w", p.cfg.brokerList(), err)
	}
	info := TopicInfo{ControlTopic: p.cfg.ControlTopic, DLQTopic: p.cfg.DLQTopic}
	var errs []error
	for _, name := range topics {
		n, err := p.partitions(md, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch name { // Config.validate keeps the three names distinct
		case p.cfg.Topic:
			info.Topic, info.Partitions = name, n
		case p.cfg.ControlTopic:
			info.ControlPartitions = n
		case p.cfg.DLQTopic:
			info.DLQPartitions = n
		}
	}
	return info, errors.Join(errs...)
}

// partitions checks one topic of a metadata answer: it exists and every
// partition has a leader.
func (p *Publisher) partitions(md *kafka.MetadataResponse, name string) (int, error) {
	for _, t := range md.Topics {
		if t.Name != name {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return 0, &TopicError{Topic: name, Brokers: p.cfg.Brokers, Missing: true, Err: t.Error}
			}
			return 0, &TopicError{Topic: name, Brokers: p.cfg.Brokers, Err: t.Error}
		}
		if len(t.Partitions) == 0 {
			return 0, &TopicError{Topic: name, Brokers: p.cfg.Brokers, Missing: true, Err: kafka.UnknownTopicOrPartition}
		}
		for _, part := range t.Partitions {
			if part.Leader.Host == "" {
				return 0, &TopicError{Topic: name, Brokers: p.cfg.Brokers,
					Err: fmt.Errorf("partition %d has no leader", part.ID)}
			}
		}
		return len(t.Partitions), nil
	}
	return 0, &TopicError{Topic: name, Brokers: p.cfg.Brokers, Missing: true, Err: kafka.UnknownTopicOrPartition}
}
