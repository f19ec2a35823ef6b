// Command callpub publishes every completed call of Huawei CC-CMS to Kafka.
//
//	callpub run                 the service
//	callpub demo                simulator + in-process Kafka + the service, printing events
//	callpub check               validate config, send one signed query per direction, check the topic
//	callpub state show|reset|prune|check|compact   operate on the store while the service is down
//	callpub tail                print the topic's events readably
//	callpub verify              prove days complete from the topics: seals against the events
//	callpub replay              ask the owner of a stream to publish a span of it again
//
// Configuration comes from CALLPUB_* environment variables; `callpub --help`
// lists them all.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-envconfig"

	_ "time/tzdata" // the container image needs no zoneinfo
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err once and maps it to the process exit code: 0 for
// success (a stop by signal included), 2 for bad configuration or usage, 1
// for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "callpub:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is bad configuration or a bad command line: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// dispatch is main without the process, so tests can drive it with a map of env vars.
func dispatch(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given: want run, demo, check, state, tail, verify or replay")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "callpub", version)
		return nil
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		fmt.Fprint(stdout, envHelp())
		return nil
	case "run":
		if helpAsked(rest) {
			fmt.Fprint(stdout, usage, envHelp())
			return nil
		}
		return run(ctx, env, stderr, hooks{})
	case "demo":
		return demo(ctx, rest, env, stdout, stderr)
	case "check":
		if helpAsked(rest) {
			fmt.Fprint(stdout, usage, envHelp())
			return nil
		}
		return check(ctx, env, stdout)
	case "state":
		return state(rest, env, stdout)
	case "tail":
		return tail(ctx, rest, env, stdout)
	case "replay":
		return replayCommand(ctx, rest, env, stdout)
	case "verify":
		return verify(ctx, rest, env, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown command %q: want run, demo, check, state, tail or verify", cmd)
	}
}

func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

const usage = `callpub publishes every completed call of Huawei CC-CMS (querycalls) to Kafka
as a CloudEvents JSON event keyed by VDN.

Usage:
  callpub run                      run the service (config from CALLPUB_* variables below)
  callpub demo [-vdns N] [-for D]  simulator + Kafka (in-process unless CALLPUB_KAFKA_BROKERS is set)
                                   + the service, printing each event; Ctrl-C stops it
  callpub check                    validate the config, send one signed query per direction,
                                   check the Kafka topic; outside UTC, ask which midnight
                                   bounds the API's range
  callpub state show|reset|prune|check|compact [flags]
                                   inspect or repair the store while the service is down
                                   ('callpub state -h' for flags)
  callpub tail [-from beginning|end|RFC3339] [-n N] [-raw] [-control]
                                   print the topic's events (or the control topic's
                                   records) readably, in either CloudEvents mode
  callpub verify [-from beginning|RFC3339] [-day D[..D]] [-stream S] [-json]
                                   prove days complete from the topics: each day's
                                   latest seal against the calls on the event topic;
                                   exit 0 only when every day is proven complete
                                   ('callpub verify -h' for flags)
  callpub replay -stream S | -vdn V -from T1 -to T2 [-wait D]
                                   ask the replica running the stream to publish every
                                   call of [T1, T2) again, while it runs (state topic)
  callpub version                  print the version
  callpub --help                   this text

Exit codes: 0 success or stopped by SIGINT/SIGTERM, 1 runtime failure, 2 bad configuration or usage.
`
