package ccms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/callpub/callpub/schemas"
)

// Window is one stream's HALF-OPEN span of filter time [Start, End). The
// API's inclusive endDate is End − 1ms (End is first rounded up to a whole
// millisecond, Start down).
type Window struct {
	schemas.Stream
	Start, End time.Time
	// MaxRows, when positive, is the most rows the caller wants in one
	// Read: when the first page's count says the window holds more,
	// ReadWindow reads no further and reports the count in Read.TooMany, so
	// the caller can read a narrower window instead of a huge batch.
	MaxRows int
}

func (w Window) String() string {
	return fmt.Sprintf("%s [%s, %s)", w.Key(),
		w.Start.UTC().Format(time.RFC3339Nano), w.End.UTC().Format(time.RFC3339Nano))
}

// Read is what ReadWindow found in a window.
type Read struct {
	// Calls are the usable rows, in the order read. A callId appears more
	// than once only when its rows differ in content (a row that changed
	// while the window was read, or a server that lists a call twice): the
	// later row is the newer.
	Calls []Call
	// Bad are rows that could not be decoded or used. Each was quarantined
	// on its own: the rest of its page was read. The same raw row read twice
	// (overlapping pages, a split) appears once.
	Bad []BadRow
	// Suspect are spans whose pages kept disagreeing with the server's count
	// after every retry and split: their calls are in Calls as far as the
	// server gave them, but some may be missing.
	Suspect []Suspect
	// TooMany, when positive, is the count of a window holding more than
	// its MaxRows rows: it was not read (Calls, Bad and Suspect are empty).
	TooMany int
	// Stats count what the read did, also when it failed.
	Stats ReadStats
}

// Suspect is a span [Start, End) of a window read as far as the server would
// page it, whose pages never agreed with each other or with their count.
type Suspect struct {
	Start, End time.Time
	Reason     string // the last disagreement seen; names no row's content
}

// ReadStats count what one ReadWindow did.
type ReadStats struct {
	Requests int // HTTP attempts, retries included
	Pages    int // pages decoded
	Splits   int // windows split in halves
	Rereads  int // spans read again because they could not be split further
}

// ReadWindow reads every call of w, page by page, Config.PageSize rows a
// page, asking for each page at the offset of the rows received so far (a bad
// row is a row received). It checks that the pages agree: no page longer than
// the page size, no page at offset > 0 repeating an earlier page (a server
// that ignores offset), no call id on two pages (rows shifted), a count that
// does not change, and rows received equal to count once a page comes back
// short. A full page is never taken as the last, whatever count says: the
// next page is asked for, so a count per page or an exactly full last page
// lose nothing. A short page while count says more is taken for a server that
// caps its pages, and paging goes on in pages of that size.
//
// When the pages disagree, or the window needs more than Config.MaxPages
// pages, ReadWindow splits the window in halves and reads each, down to
// Config.MinSpan. A span that still disagrees there is read again twice; if
// it never agrees, what was read is kept and the span is reported in
// Read.Suspect. So is a span whose halves hold no row it did not: its count
// is wrong, not its paging, and splitting further would only repeat that.
//
// Calls keep the order read; a row identical to one already read is dropped
// (Read.Calls). A nil error means every call in the window was read as far as
// the server would give it, the Suspect spans saying where that may not be
// all; after an error nothing may be concluded about the window.
func (c *Client) ReadWindow(ctx context.Context, w Window) (Read, error) {
	var st ReadStats
	w.Start = w.Start.Truncate(time.Millisecond)
	if e := w.End.Truncate(time.Millisecond); e.Before(w.End) {
		w.End = e.Add(time.Millisecond)
	}
	if !w.End.After(w.Start) {
		return Read{Stats: st}, fmt.Errorf("read window %v: %w", w, &ValidationError{Field: "endDate", Reason: "window is empty (End must be after Start)"})
	}
	r := reader{c: c, st: &st, byID: map[string][]int{}, badSeen: map[string]bool{}, maxRows: w.MaxRows}
	if err := r.read(ctx, w); err != nil {
		return Read{Stats: st}, err
	}
	return Read{Calls: r.calls, Bad: r.bad, Suspect: r.suspect, TooMany: r.tooMany, Stats: st}, nil
}

// rereads is how many more times ReadWindow reads a span it cannot split
// before it reports the span as suspect.
const rereads = 2

// reader accumulates one ReadWindow.
type reader struct {
	c       *Client
	st      *ReadStats
	calls   []Call
	byID    map[string][]int // callId -> indexes in calls of its distinct rows
	bad     []BadRow
	badSeen map[string]bool // raw rows in bad
	suspect []Suspect
	// maxRows is Window.MaxRows while the whole window's first page is
	// read, then 0; tooMany is the count that page gave when it was over.
	maxRows, tooMany int
}

// read reads w, splitting it when its pages disagree.
func (r *reader) read(ctx context.Context, w Window) error {
	p, err := r.pass(ctx, w)
	r.maxRows = 0 // only the whole window is sized by its count
	if err != nil || p.tooMany > 0 {
		r.tooMany = p.tooMany
		return err
	}
	return r.settle(ctx, w, p)
}

// settle keeps p, a pass over w, when its pages agree; otherwise it splits w
// or, when w cannot be split, reads it again.
func (r *reader) settle(ctx context.Context, w Window, p pass) error {
	switch {
	case p.reason == "":
		r.keep(p)
		return nil
	case r.canSplit(w):
		return r.split(ctx, w, p)
	}
	return r.reread(ctx, w, p)
}

func (r *reader) canSplit(w Window) bool {
	span := w.End.Sub(w.Start)
	return span >= 2*r.c.minSpan && w.Start.Add(span/2).Truncate(time.Millisecond).After(w.Start)
}

// split reads the halves of w, whose pass p disagreed, and settles each.
func (r *reader) split(ctx context.Context, w Window, p pass) error {
	r.st.Splits++
	r.c.log.Debug("ccms: splitting window", "window", w.String(), "reason", p.reason)
	mid := w.Start.Add(w.End.Sub(w.Start) / 2).Truncate(time.Millisecond)
	lo, hi := w, w
	lo.End, hi.Start = mid, mid
	pl, err := r.pass(ctx, lo)
	if err != nil {
		return err
	}
	ph, err := r.pass(ctx, hi)
	if err != nil {
		return err
	}
	if p.countOff && pl.finished() && ph.finished() && pl.rows+ph.rows <= p.rows && (pl.reason != "" || ph.reason != "") {
		// The halves hold no row the whole did not: the count is wrong,
		// not the paging, and splitting further would only repeat that.
		r.keepSuspect(lo, pl)
		r.keepSuspect(hi, ph)
		return nil
	}
	if err := r.settle(ctx, lo, pl); err != nil {
		return err
	}
	return r.settle(ctx, hi, ph)
}

// reread reads w, which cannot be split and whose pass p disagreed, up to
// rereads more times, each after a backoff. The first pass that agrees is
// kept; if none does, every pass is kept and w is suspect.
func (r *reader) reread(ctx context.Context, w Window, p pass) error {
	passes := []pass{p}
	for i := 1; i <= rereads; i++ {
		t := time.NewTimer(r.c.backoff(i, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("read window %v: waiting to read again (%s): %w", w, p.reason, ctx.Err())
		case <-t.C:
		}
		r.st.Rereads++
		q, err := r.pass(ctx, w)
		if err != nil {
			return err
		}
		if q.reason == "" {
			r.keep(q)
			return nil
		}
		passes = append(passes, q)
	}
	for _, q := range passes {
		r.keep(q)
	}
	last := passes[len(passes)-1]
	r.addSuspect(w, fmt.Sprintf("%s (%d reads, and the span cannot be split below %v)", last.reason, len(passes), r.c.minSpan))
	return nil
}

// keepSuspect keeps what p read of w, and reports w when p disagreed.
func (r *reader) keepSuspect(w Window, p pass) {
	r.keep(p)
	if p.reason != "" {
		r.addSuspect(w, p.reason)
	}
}

// addSuspect reports w, joining it to the span before when they touch.
func (r *reader) addSuspect(w Window, reason string) {
	r.c.log.Debug("ccms: suspect span", "window", w.String(), "reason", reason)
	if n := len(r.suspect); n > 0 && r.suspect[n-1].End.Equal(w.Start) {
		r.suspect[n-1].End = w.End
		return
	}
	r.suspect = append(r.suspect, Suspect{Start: w.Start, End: w.End, Reason: reason})
}

// keep adds what p read: a call unless the Same row is already kept, a bad
// row unless its raw bytes are.
func (r *reader) keep(p pass) {
	for _, c := range p.calls {
		r.keepCall(c)
	}
	for _, b := range p.bad {
		if !r.badSeen[string(b.Raw)] {
			r.badSeen[string(b.Raw)] = true
			r.bad = append(r.bad, b)
		}
	}
}

func (r *reader) keepCall(c Call) {
	for _, i := range r.byID[c.CallID] {
		if r.calls[i].Same(c) {
			return
		}
	}
	r.byID[c.CallID] = append(r.byID[c.CallID], len(r.calls))
	r.calls = append(r.calls, c)
}

// pass is one reading of a span, page by page, and what its pages said.
type pass struct {
	calls  []Call
	bad    []BadRow
	rows   int    // rows received, bad ones included
	reason string // why the pages disagree; "" when they agree
	// countOff: the pages ran to a short page, agreeing with each other, but
	// the rows received differ from the count.
	countOff bool
	// tooMany: the first page's count, over the reader's maxRows; the pass
	// stopped there.
	tooMany int
}

// finished reports whether the pass paged to its end: rows are every row
// the server would give for the span.
func (p pass) finished() bool { return p.reason == "" || p.countOff }

// pass reads w page by page. Its reason is set when the pages disagree (or
// the window needs too many pages) and w should be split; the error is for
// failures of a single page.
func (r *reader) pass(ctx context.Context, w Window) (pass, error) {
	maxPages := r.c.maxPages
	q := Query{Stream: w.Stream, Begin: w.Start, End: w.End.Add(-time.Millisecond), Limit: r.c.pageSize}
	if cap := int(r.c.pages.capped.Load()); cap > 0 && cap < q.Limit {
		q.Limit = cap // the server's pages hold no more: a page this full is never the last
	}
	canSplit := r.canSplit(w)
	set := pageSet{count: -1, onPage: map[rowKey]int{}}
	for n := 0; ; n++ {
		// At MinSpan a window may page on past MaxPages, but not forever.
		if n >= maxPages && canSplit || n >= 10*maxPages {
			return set.stop(fmt.Sprintf("more than %d pages", n)), nil
		}
		page, attempts, err := r.c.queryCalls(ctx, q)
		r.st.Requests += attempts
		if err != nil {
			if errors.Is(err, ErrBodyTooLarge) && canSplit {
				return set.stop("response body over the size limit"), nil
			}
			return pass{}, fmt.Errorf("read window %v: %w", w, err)
		}
		r.st.Pages++
		over := set.add(q.Offset, q.Limit, page)
		if !over && n == 0 && r.maxRows > 0 && set.count > r.maxRows && !set.perPage {
			return pass{tooMany: set.count}, nil
		}
		if over {
			if !(n == 0 && set.reason == "" && r.c.pages.probe(set.rows, q.Limit)) {
				return set.pass, nil
			}
			// A short first page, the fullest yet: ask past it once.
			q.Offset = set.rows
			done, err := r.probePast(ctx, w, q, &set)
			if err != nil {
				return pass{}, err
			}
			if done {
				return set.pass, nil
			}
		}
		if n == 0 && set.count > q.Limit*maxPages && canSplit && !set.perPage {
			return set.stop(fmt.Sprintf("count %d needs more than %d pages", set.count, maxPages)), nil
		}
		q.Offset, q.Limit = set.rows, set.next
	}
}

// probePast asks for the page after a short first page (q.Offset is its
// rows). An empty answer ends the pass as it was (done); rows mean the
// server caps its pages at the first page's size while counting per page —
// together they look exactly like a short window — so the client pages on
// past pages that full from then on, and the pass goes on from the rows
// received.
func (r *reader) probePast(ctx context.Context, w Window, q Query, set *pageSet) (done bool, err error) {
	first := set.rows
	page, attempts, err := r.c.queryCalls(ctx, q)
	r.st.Requests += attempts
	if err != nil {
		return true, fmt.Errorf("read window %v: %w", w, err)
	}
	r.st.Pages++
	if page.rows() == 0 || set.repeats(page) {
		return true, nil // nothing follows (a server that ignores offset repeats the page)
	}
	// A server that counts per page says so here: the page's count is its
	// own rows (add sees it). A count that grew instead is a total: a row
	// was written into the window between the two requests, which a pass
	// near now meets, and the pass is read again — no cap is learnt.
	if !page.HasCount {
		set.perPage = true // nothing tells them apart
	}
	over := set.add(q.Offset, first, page)
	if set.reason == "" && set.perPage {
		r.c.pages.capped.Store(int64(first))
		r.c.log.Warn("ccms: the server returned fewer rows than asked for and counted them per page; "+
			"pages are read as holding at most this many rows from now on", "rows", first, "limit", q.Limit)
	}
	return over, nil
}

// repeats reports whether every row of page is on an earlier page.
func (s *pageSet) repeats(page Page) bool {
	for _, c := range page.Calls {
		if _, ok := s.onPage[rowKey{s: c.CallID}]; !ok {
			return false
		}
	}
	return len(page.Bad) == 0
}

// pageSizes is what a client has learnt about the server's pages.
type pageSizes struct {
	// fullest is the most rows a short first page that ended its pass held;
	// capped is the most rows the server puts in a page when below the
	// limit (0: it never capped).
	fullest, capped atomic.Int64
}

// probe reports whether a short first page of rows rows, for limit, is
// worth one request to check that nothing follows it: when it is at least
// as full as every short page before it. A server that caps its pages and
// counts per page answers every larger window with a page of exactly the
// cap, never less full than a short page it gave before, so every truncated
// window is caught, also when a true window of exactly the cap came first or
// several are read at once. A faithful server costs a probe only for a
// short page as full as its fullest so far: a few dozen as that grows,
// then the rare page of that size.
func (ps *pageSizes) probe(rows, limit int) bool {
	if rows <= 0 || rows >= limit {
		return false
	}
	for {
		f := ps.fullest.Load()
		if int64(rows) < f {
			return false
		}
		if int64(rows) == f || ps.fullest.CompareAndSwap(f, int64(rows)) {
			return true
		}
	}
}

// pageSet is the pages of one pass read so far, and what they claim.
type pageSet struct {
	pass
	count   int            // the count the pages report; -1 until one does
	perPage bool           // the count is the rows of each page, not a total
	next    int            // the limit to ask the next page with
	pages   []pageKeys     // each page's rows, to spot a repeated page
	onPage  map[rowKey]int // row -> offset of the page it was on
}

// rowKey identifies a row of a page: a call by its id, a bad row by its raw
// bytes.
type rowKey struct {
	bad bool
	s   string
}

type pageKeys struct {
	offset int
	keys   []rowKey
}

// stop ends the pass with reason.
func (s *pageSet) stop(reason string) pass {
	s.reason = reason
	return s.pass
}

// add checks the page read at offset with limit against the pages before it
// and keeps its rows. It returns true when the pass is over: the pages ran
// to their end, or reason says how they disagree. Otherwise next is the limit
// to ask for the next page with, at the offset of the rows received.
func (s *pageSet) add(offset, limit int, page Page) (over bool) {
	got := page.rows()
	if reason := s.checkCount(offset, got, page); reason != "" {
		return s.fail(reason)
	}
	if got > limit {
		// A server that ignores limit may return the whole window at once.
		if offset == 0 && page.HasCount && got == page.Count {
			s.take(page)
			return true
		}
		return s.fail(fmt.Sprintf("page at offset %d has %d rows, more than the limit %d", offset, got, limit))
	}
	if reason := s.overlap(offset, page); reason != "" {
		return s.fail(reason)
	}
	s.take(page)
	switch {
	case got == limit:
		// Never the last page, whatever count says: a count per page, and a
		// count that ends on an exactly full page, look alike until the next
		// page comes back short.
		s.next = limit
		return false
	case got > 0 && !s.perPage && s.count > s.rows:
		// Short while count says there is more: a server that caps its pages
		// below limit. Ask for the rest from the rows received, in pages of
		// the size it gave (offset stays a multiple of limit, as documented).
		s.next = got
		return false
	}
	if !s.perPage && s.count >= 0 && s.rows != s.count {
		s.countOff = true
		return s.fail(fmt.Sprintf("received %d rows, count says %d", s.rows, s.count))
	}
	return true
}

func (s *pageSet) fail(reason string) bool {
	s.reason = reason
	return true
}

func (s *pageSet) take(page Page) {
	s.calls = append(s.calls, page.Calls...)
	s.bad = append(s.bad, page.Bad...)
	s.rows += page.rows()
}

// checkCount compares the page's count with the pages before it. A count
// equal to the rows of a page after the first cannot be a total (a total
// counts the earlier pages too): the server counts per page, and from then on
// only a short page ends the pass.
func (s *pageSet) checkCount(offset, got int, page Page) (reason string) {
	switch {
	case !page.HasCount || s.perPage:
		return ""
	case offset > 0 && page.Count == got:
		s.perPage = true
		return ""
	case s.count >= 0 && page.Count != s.count:
		return fmt.Sprintf("count changed from %d to %d at offset %d", s.count, page.Count, offset)
	}
	s.count = page.Count
	return ""
}

// overlap reports the page at offset repeating an earlier page (a server
// that ignores offset) or sharing a call id with one (rows shifted), and
// records the page's rows.
func (s *pageSet) overlap(offset int, page Page) (reason string) {
	keys := make([]rowKey, 0, page.rows())
	for _, c := range page.Calls {
		keys = append(keys, rowKey{s: c.CallID})
	}
	for _, b := range page.Bad {
		keys = append(keys, rowKey{bad: true, s: string(b.Raw)})
	}
	if len(keys) > 0 {
		for _, prev := range s.pages {
			if slices.Equal(prev.keys, keys) {
				return fmt.Sprintf("page at offset %d repeats the page at offset %d (offset ignored?)", offset, prev.offset)
			}
		}
		for _, k := range keys {
			if off, ok := s.onPage[k]; ok && off != offset {
				return fmt.Sprintf("%s on the pages at offsets %d and %d (rows shifted)", k, off, offset)
			}
		}
		for _, k := range keys {
			if !k.bad { // bad rows can be alike (null) without being the same row
				s.onPage[k] = offset
			}
		}
	}
	s.pages = append(s.pages, pageKeys{offset: offset, keys: keys})
	return ""
}

// String names a call for a reason by its id when that is short and
// printable.
func (k rowKey) String() string {
	if name := nameCallID(k.s); name != "" {
		return "call id " + name
	}
	return "a call id"
}
