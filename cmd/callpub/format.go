package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/callpub/callpub/schemas"
)

// callLine renders a call-completed event as one readable line.
func callLine(d schemas.CallCompletedData) string {
	var b strings.Builder
	end := d.CallEnd.Time.Local().Format("15:04:05")
	if d.CallEnd.IsZero() {
		end = "--:--:--" // a call that never reported an end (call.unended)
	}
	dir := "in "
	if d.Direction == "outbound" {
		dir = "out"
	}
	fmt.Fprintf(&b, "%s  VDN %-4d %s  call %-20s %s -> %s", end, d.VDN, dir, d.CallID, orDash(d.CallerNo), orDash(d.CalleeNo))
	fmt.Fprintf(&b, "  wait %s", ms(d.WaitMs))
	if d.Answered {
		fmt.Fprintf(&b, "  talk %s", ms(d.TalkMs))
	} else {
		b.WriteString("  not answered")
	}
	if d.LeaveReason.Name != "" {
		fmt.Fprintf(&b, "  (%s)", d.LeaveReason.Name)
	}
	if d.Update {
		b.WriteString("  [update]")
	}
	if d.CallEnd.IsZero() {
		b.WriteString("  [no end reported]")
	}
	return b.String()
}

// controlLine renders a control record (gap, day sealed, heartbeat).
func controlLine(e schemas.Event) string {
	return fmt.Sprintf("%s  %-34s %s %s", e.Time.Local().Format("15:04:05"), e.Type, e.Subject, string(e.Data))
}

func ms(n int64) string { return (time.Duration(n) * time.Millisecond).Round(time.Second).String() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
