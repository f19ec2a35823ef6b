package main

// ccmsHelp describes the CALLPUB_CCMS_* variables of ccms.Config.
var ccmsHelp = map[string]string{
	"CCMS_URL":                         "CC-CMS base URL, https://host:port",
	"CCMS_AK":                          "access key id",
	"CCMS_SK":                          "secret key (or CCMS_SK_FILE); never logged",
	"CCMS_CA_FILE":                     "PEM bundle trusted besides the system roots (private CA)",
	"CCMS_SERVER_NAME":                 "TLS server name (SNI) when the URL names an IP",
	"CCMS_INSECURE_SKIP_VERIFY":        "skip certificate verification (logs a warning; never in production)",
	"CCMS_TIMEZONE":                    "IANA zone of the API's day (yesterday/today limits, day buckets)",
	"CCMS_DAY_BOUNDARY_MODE":           "whose midnights bound the API's range: auto (ask the server at start and daily; both until it answers), both (the stricter of TIMEZONE's and UTC's), tenant or utc",
	"CCMS_TIMEOUT":                     "timeout of one HTTP attempt",
	"CCMS_SIGN_HEADERS":                "headers signed by auth-v2 (must include host)",
	"CCMS_SIGN_TIMESTAMP":              "signature timestamp format: seconds or millis",
	"CCMS_SIGN_EMPTY_QUERY_LINE":       "sign with an empty query line (a 401 diagnostic, ccms-api.md A2)",
	"CCMS_SIGN_BLANK_LINE_BEFORE_BODY": "sign with a blank line before the body (a 401 diagnostic, A4)",
	"CCMS_SIGN_ENCODING":               "signature encoding: hex, or base64 (a 401 diagnostic, A4)",
	"CCMS_CLOCK_OFFSET":                "the server's clock minus ours, for signatures, window ends and day bounds; 0s: learned from its Date headers",
	"CCMS_CONTENT_TYPE":                "Content-Type sent and signed",
	"CCMS_HOST_HEADER":                 "Host header sent and signed instead of the URL's host",
	"CCMS_DATES_AS_STRINGS":            "send beginDate/endDate as JSON strings",
	"CCMS_MAX_ATTEMPTS":                "HTTP attempts per page for transient failures",
	"CCMS_RETRY_BASE_DELAY":            "first wait between attempts (doubles, jittered)",
	"CCMS_RETRY_MAX_DELAY":             "longest wait between attempts, Retry-After included",
	"CCMS_MAX_BODY_BYTES":              "largest response body accepted",
}

// kafkaHelp describes the CALLPUB_KAFKA_* variables of publisher.Config,
// and CALLPUB_EVENT_MODE, which config hands to it.
var kafkaHelp = map[string]string{
	"EVENT_MODE":              "CloudEvents Kafka binding mode of every record: structured (the event as the value, ce_ headers repeat id, source, type, subject, time, specversion) or binary (the data as the value, every attribute a ce_ header)",
	"KAFKA_BROKERS":           "bootstrap brokers, host:port,host:port (required for run and check)",
	"KAFKA_TOPIC":             "topic of call-completed events (must exist; never auto-created)",
	"KAFKA_CONTROL_TOPIC":     "optional topic of gap, day-sealed and heartbeat records",
	"KAFKA_STATE_TOPIC":       "optional compacted topic of each stream's state (cursor, pending calls, gaps, seals), written before every local commit; a start rebuilds a lost or stale store from it and the event topic",
	"KAFKA_DLQ_TOPIC":         "optional dead-letter topic: one record per row that could not be decoded or used (phone numbers per PII)",
	"KAFKA_MAX_MESSAGE_BYTES": "largest record batch the topics accept (their max.message.bytes); event sizes are checked against it before sending",
	"KAFKA_COMPRESSION":       "none, snappy, lz4 or zstd",
	"KAFKA_SASL_MECHANISM":    "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (unset: no SASL)",
	"KAFKA_USERNAME":          "SASL username",
	"KAFKA_PASSWORD":          "SASL password (or KAFKA_PASSWORD_FILE); never logged",
	"KAFKA_TLS":               "TLS to the brokers",
	"KAFKA_CA_FILE":           "PEM bundle trusted for the brokers besides the system roots",
	"KAFKA_TLS_SERVER_NAME":   "name verified in broker certificates",
	"KAFKA_BATCH_TIMEOUT":     "how long a partition batch waits for more events",
	"KAFKA_WRITE_TIMEOUT":     "bound of one produce request",
}
