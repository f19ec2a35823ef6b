package schemas_test

import (
	"fmt"
	"time"

	"github.com/callpub/callpub/schemas"
)

func ExampleEventID() {
	// The same call always gets the same id, on every replica and restart.
	fmt.Println(schemas.EventID(1, 25, true, "1774772100-538062"))
	// Output: 353d88654b1a64d5185c083a26d8af69
}

func ExampleEncoder_CallCompleted() {
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIMask})
	if err != nil {
		panic(err)
	}
	end := time.Date(2026, 3, 29, 8, 18, 13, 250_000_000, time.UTC)
	ev, err := enc.CallCompleted(schemas.Call{
		CCID: 1, VDN: 25, Inbound: true, CallID: "1774772100-538062", CallerNo: "+8613800001234",
		WaitBegin: end.Add(-3 * time.Minute), CallEnd: end, MediaType: 5, LeaveReason: 89,
	}, false)
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Type, ev.Source, ev.PartitionKey, ev.Subject, schemas.FormatTime(ev.Time))
	// Output: com.huawei.ccms.call.completed.v1 /ccms/1/vdn/25 25 1774772100-538062 2026-03-29T08:18:13.250Z
}
