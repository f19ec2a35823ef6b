//go:build !linux

package kafkatest

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; Main still stops the broker.
func dieWithParent(*exec.Cmd) {}
