package kafkatest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the JVM if the test binary dies first,
// so a crashed or killed `go test` leaves no broker holding ports.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
