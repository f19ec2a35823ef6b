package schemas

import "encoding/json"

// The code tables of ccms-api.md §4. Codes are kept raw on the wire; names
// are labels for display and are empty (null on the wire) for codes the
// tables do not list. Unknown codes are never rejected.

var callTypeNames = map[int]string{
	0:  "Normal inbound call",
	1:  "Special inbound call",
	2:  "VMS call: get message",
	3:  "VMS call: delete message",
	4:  "VMS call: send to BP",
	5:  "Toll inbound call",
	6:  "Internal call",
	7:  "Normal outbound call",
	8:  "Agent outbound call",
	9:  "PRI outbound call",
	10: "IVR outbound call",
	11: "Phone-agent self outbound call",
	12: "IVR PRI outbound call",
	40: "Reserved outbound call",
	41: "Pre-occupied outbound call",
	43: "Predictive outbound call",
	44: "Preview outbound call",
	45: "Reserved callback",
	51: "Internal two-party consultation",
	52: "Internal three-party consultation",
	53: "Multi-party call",
}

var leaveReasonNames = map[int]string{
	0:  "Normal access or transfer",
	1:  "Overflow (busy) transfer",
	2:  "Timeout transfer",
	3:  "No-agent transfer",
	4:  "Queue-cancel transfer",
	5:  "Agent no-answer transfer",
	6:  "Resume suspended",
	7:  "Connect held",
	8:  "Three-party help",
	9:  "Pick up held",
	10: "Three-party call",
	11: "Internal help, requester released",
	12: "Intercepted",
	13: "Picked up",
	14: "Called-number analysis not configured",
	15: "User released",
	16: "Agent released",
	17: "Transferred out",
	18: "Held",
	19: "Internal error",
	20: "Called party busy",
	22: "Phone switched off",
	23: "Out of coverage",
	24: "Number does not exist",
	25: "ACD has no resource",
	26: "User did not answer",
	27: "Called party rejected",
	47: "Queued in several queues",
	48: "Answered from a secondary queue",
	49: "Agent rejected (cancel)",
	50: "Agent declined",
	51: "Conference join",
	52: "Conference release",
	53: "Conference kick",
	54: "Transferred because the answer rate is below threshold",
	88: "User hung up after the agent answered",
	89: "User hung up before the agent answered",
}

var mediaTypeNames = map[int]string{
	1:  "Text chat",
	2:  "Click-to-dial",
	3:  "Escorted browsing or form sharing",
	4:  "Callback request",
	5:  "Common voice call",
	6:  "Email",
	7:  "Fax",
	8:  "IP video (H.323)",
	9:  "Whiteboard",
	10: "Application sharing",
	11: "File transfer",
	12: "ISDN video 2B+D",
	13: "ISDN video 6B+D",
	14: "OPS",
	15: "Predictive outbound",
	16: "Preview outbound",
	17: "Message",
	18: "Video click-to-dial",
	19: "Video call",
	20: "Non-real-time call",
	21: "Desktop sharing",
	22: "Skill-queue calling number",
	50: "Email chat",
	51: "Web chat",
	52: "SMS chat",
	53: "Social or multimedia text chat",
	54: "Fax chat",
	55: "H5 video",
}

// subMediaTypeNames is the current appendix (ccms-api.md §4.4, A16: codes
// 7-9 meant something else in older tables).
var subMediaTypeNames = map[int]string{
	1:  "Web",
	2:  "WhatsApp",
	3:  "LINE",
	4:  "WeChat",
	5:  "Facebook Messenger",
	6:  "Twitter/X",
	7:  "Email",
	8:  "SMS",
	9:  "Telegram",
	10: "Instagram",
}

// MediaTypeMultimedia is the mediaType whose subMediaType is meaningful.
const MediaTypeMultimedia = 53

// CallTypeName returns the label of a callType code, or "" when unknown.
func CallTypeName(code int) string { return callTypeNames[code] }

// LeaveReasonName returns the label of a leaveReason code, or "" when unknown.
func LeaveReasonName(code int) string { return leaveReasonNames[code] }

// MediaTypeName returns the label of a mediaType code, or "" when unknown.
func MediaTypeName(code int) string { return mediaTypeNames[code] }

// SubMediaTypeName returns the label of a subMediaType code (current table),
// or "" when unknown. It is only meaningful when mediaType is 53.
func SubMediaTypeName(code int) string { return subMediaTypeNames[code] }

// Code is a coded field on the wire: {"code":15,"name":"User released"},
// with "name":null when the tables do not know the code.
type Code struct {
	Code int
	Name string // "" when unknown
}

type wireCode struct {
	Code int     `json:"code"`
	Name *string `json:"name"`
}

// MarshalJSON writes name as null when it is empty.
func (c Code) MarshalJSON() ([]byte, error) {
	w := wireCode{Code: c.Code}
	if c.Name != "" {
		w.Name = &c.Name
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Code) UnmarshalJSON(b []byte) error {
	var w wireCode
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Code{Code: w.Code}
	if w.Name != nil {
		c.Name = *w.Name
	}
	return nil
}
