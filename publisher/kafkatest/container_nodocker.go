//go:build nodocker

package kafkatest

import (
	"context"
	"errors"
)

// With -tags nodocker the testcontainers packages are not compiled in.
var errNoDocker = errors.New("left out of this build (-tags nodocker)")

func dockerHealthy(context.Context) error { return errNoDocker }

func startContainer(context.Context) (*Broker, error) { return nil, errNoDocker }
