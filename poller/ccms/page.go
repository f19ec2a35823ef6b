package ccms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callpub/callpub/schemas"
)

// Window is one stream's HALF-OPEN span of filter time [Start, End). The
// API's inclusive endDate is End − 1ms (End is first rounded up to a whole
// millisecond, Start down).
type Window struct {
	schemas.Stream
	Start, End time.Time
}

func (w Window) String() string {
	return fmt.Sprintf("%s [%s, %s)", w.Key(),
		w.Start.UTC().Format(time.RFC3339Nano), w.End.UTC().Format(time.RFC3339Nano))
}

// Read is what ReadWindow found in a window.
type Read struct {
	// Calls are the usable rows, in the order first read.
	Calls []Call
	// Bad are rows that could not be decoded or used. Each was quarantined
	// on its own: the rest of its page was read.
	Bad []BadRow
	// Suspect are spans whose pages kept disagreeing with the server's count
	// after every retry and split: their calls are in Calls as far as the
	// server gave them, but some may be missing.
	Suspect []Suspect
	// Stats count what the read did, also when it failed.
	Stats ReadStats
}

// BadRow is one row of a page that could not become a Call.
type BadRow struct {
	// Raw is the row's JSON as received. It may hold phone numbers: treat it
	// with the phone-number policy before it leaves the process.
	Raw    json.RawMessage
	Reason string // why the row is unusable, without the row's content
}

// Suspect is a span of a window read as far as the server would page it,
// whose count never agreed with the rows it returned.
type Suspect struct {
	Start, End time.Time
	Reason     string
}

// ReadStats count what one ReadWindow did.
type ReadStats struct {
	Requests int // HTTP attempts, retries included
	Pages    int // pages decoded
	Splits   int // windows split in halves
}

// ReadWindow reads every call of w, page by page, Config.PageSize rows a
// page. It checks that the pages agree: no page longer than the page size, no
// page at offset > 0 repeating an earlier page (a server that ignores
// offset), no call id on two pages (rows shifted), a count that does not
// change, and rows received equal to count. When they disagree, or the window
// needs more than Config.MaxPages pages, it splits the window in halves and
// reads each, down to Config.MinSpan; below that it returns an error wrapping
// ErrInconsistent with the window and the reason. Calls are deduplicated by
// callId (the last row read wins) and returned in the order first read. A nil
// error means every call in the window was read.
func (c *Client) ReadWindow(ctx context.Context, w Window) (Read, error) {
	var st ReadStats
	w.Start = w.Start.Truncate(time.Millisecond)
	if e := w.End.Truncate(time.Millisecond); e.Before(w.End) {
		w.End = e.Add(time.Millisecond)
	}
	if !w.End.After(w.Start) {
		return Read{Stats: st}, fmt.Errorf("read window %v: %w", w, &ValidationError{Field: "endDate", Reason: "window is empty (End must be after Start)"})
	}
	r := reader{c: c, st: &st, byID: map[string]int{}}
	if err := r.read(ctx, w); err != nil {
		return Read{Stats: st}, err
	}
	return Read{Calls: r.calls, Stats: st}, nil
}

// reader accumulates one ReadWindow.
type reader struct {
	c     *Client
	st    *ReadStats
	calls []Call
	byID  map[string]int // callId -> index in calls
}

// read reads w, splitting it when its pages disagree.
func (r *reader) read(ctx context.Context, w Window) error {
	calls, reason, err := r.pages(ctx, w)
	if err != nil {
		return err
	}
	if reason == "" {
		r.keep(calls)
		return nil
	}
	span := w.End.Sub(w.Start)
	mid := w.Start.Add(span / 2).Truncate(time.Millisecond)
	if span < 2*r.c.minSpan || !mid.After(w.Start) {
		return fmt.Errorf("read window %v: %s (cannot split below %v): %w", w, reason, r.c.minSpan, ErrInconsistent)
	}
	r.st.Splits++
	r.c.log.Debug("ccms: splitting window", "window", w.String(), "reason", reason)
	lo, hi := w, w
	lo.End, hi.Start = mid, mid
	if err := r.read(ctx, lo); err != nil {
		return err
	}
	return r.read(ctx, hi)
}

func (r *reader) keep(calls []Call) {
	for _, c := range calls {
		if i, ok := r.byID[c.CallID]; ok {
			r.calls[i] = c
			continue
		}
		r.byID[c.CallID] = len(r.calls)
		r.calls = append(r.calls, c)
	}
}

// pages reads w page by page. A non-empty reason means the pages disagree
// (or the window needs too many pages) and w should be split; the error is
// for failures of a single page.
func (r *reader) pages(ctx context.Context, w Window) (calls []Call, reason string, err error) {
	size, maxPages := r.c.pageSize, r.c.maxPages
	q := Query{Stream: w.Stream, Begin: w.Start, End: w.End.Add(-time.Millisecond), Limit: size}
	canSplit := w.End.Sub(w.Start) >= 2*r.c.minSpan
	set := pageSet{size: size, count: -1, onPage: map[string]int{}}
	for n := 0; ; n++ {
		// At MinSpan a window may page on past MaxPages, but not forever.
		if n >= maxPages && canSplit || n >= 10*maxPages {
			return nil, fmt.Sprintf("more than %d pages", n), nil
		}
		q.Offset = n * size
		page, attempts, err := r.c.queryCalls(ctx, q)
		r.st.Requests += attempts
		if err != nil {
			if errors.Is(err, ErrBodyTooLarge) && canSplit {
				return nil, "response body over the size limit", nil
			}
			return nil, "", fmt.Errorf("read window %v: %w", w, err)
		}
		r.st.Pages++
		done, reason := set.add(q.Offset, page)
		switch {
		case reason != "":
			return nil, reason, nil
		case done:
			return set.calls, "", nil
		case n == 0 && set.count > size*maxPages && canSplit:
			return nil, fmt.Sprintf("count %d needs more than %d pages", set.count, maxPages), nil
		}
	}
}

// pageSet is the pages of one window read so far, and what they claim.
type pageSet struct {
	size   int            // the page size asked for
	count  int            // the count the pages report; -1 until one does
	ids    [][]string     // the call ids of each page, to spot a repeated page
	onPage map[string]int // callId -> offset of the page it was on
	calls  []Call
}

// add checks the page at offset against the pages before it and keeps its
// calls. done means the window is complete; a non-empty reason means the
// pages disagree.
func (s *pageSet) add(offset int, page Page) (done bool, reason string) {
	got := len(page.Calls)
	switch {
	case page.HasCount && s.count >= 0 && page.Count != s.count:
		return false, fmt.Sprintf("count changed from %d to %d at offset %d", s.count, page.Count, offset)
	case page.HasCount:
		s.count = page.Count
	}
	if got > s.size {
		// A server that ignores limit may return the whole window at once.
		if offset == 0 && page.HasCount && got == page.Count && distinct(page.Calls) == got {
			s.calls = page.Calls
			return true, ""
		}
		return false, fmt.Sprintf("page at offset %d has %d rows, more than the limit %d", offset, got, s.size)
	}
	if reason := s.overlap(offset, page.Calls); reason != "" {
		return false, reason
	}
	s.calls = append(s.calls, page.Calls...)
	rows := len(s.calls)
	if s.count >= 0 && rows > s.count {
		return false, fmt.Sprintf("received %d rows, count says %d", rows, s.count)
	}
	if got < s.size || s.count >= 0 && rows == s.count {
		if s.count >= 0 && rows != s.count {
			return false, fmt.Sprintf("received %d rows, count says %d", rows, s.count)
		}
		return true, ""
	}
	return false, ""
}

// overlap reports the page at offset repeating an earlier page (a server
// that ignores offset) or sharing a call id with one (rows shifted), and
// records the page's ids.
func (s *pageSet) overlap(offset int, calls []Call) (reason string) {
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.CallID
	}
	if len(ids) > 0 {
		for i, prev := range s.ids {
			if slices.Equal(prev, ids) {
				return fmt.Sprintf("page at offset %d repeats the page at offset %d (offset ignored?)", offset, i*s.size)
			}
		}
		for _, id := range ids {
			if off, ok := s.onPage[id]; ok && off != offset {
				return fmt.Sprintf("call id %q on the pages at offsets %d and %d (rows shifted)", id, off, offset)
			}
		}
		for _, id := range ids {
			s.onPage[id] = offset
		}
	}
	s.ids = append(s.ids, ids)
	return ""
}

func distinct(calls []Call) int {
	seen := make(map[string]struct{}, len(calls))
	for _, c := range calls {
		seen[c.CallID] = struct{}{}
	}
	return len(seen)
}
