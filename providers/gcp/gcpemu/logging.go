package gcpemu

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/cloud/audit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Cloud Logging's entries.list paging limits.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// DefaultWindow is how far back ListLogEntries searches when the filter has
// no timestamp bound.
const DefaultWindow = 24 * time.Hour

// loggingServer serves google.logging.v2.LoggingServiceV2.
type loggingServer struct {
	loggingpb.UnimplementedLoggingServiceV2Server
	e *Emulator
}

func (s *loggingServer) ListLogEntries(ctx context.Context, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	return s.e.listLogEntries(ctx, req)
}

// listLogEntries serves ListLogEntries: the entries of the named
// resources' own logs (no aggregation from children, as without an
// aggregated sink) that match the filter, ordered and paged.
func (e *Emulator) listLogEntries(ctx context.Context, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	names := req.GetResourceNames()
	if len(names) == 0 {
		return nil, status.Error(codes.InvalidArgument, "resource_names is required: name at least one of projects/ID, folders/ID or organizations/ID.")
	}
	for _, n := range names {
		if _, err := serviceOf(n); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "Resource name %q is not supported by the emulator: use projects/ID, folders/ID or organizations/ID (log bucket views are not modelled).", n)
		}
	}
	filter, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid filter %q: %v", req.GetFilter(), err)
	}
	desc := false
	switch strings.ToLower(strings.Join(strings.Fields(req.GetOrderBy()), " ")) {
	case "", "timestamp", "timestamp asc":
	case "timestamp desc":
		desc = true
	default:
		return nil, status.Errorf(codes.InvalidArgument, "Invalid order_by %q: use \"timestamp asc\" or \"timestamp desc\".", req.GetOrderBy())
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > maxPageSize:
		return nil, status.Errorf(codes.InvalidArgument, "Invalid page_size %d: use 1 to %d (0 means %d).", size, maxPageSize, defaultPageSize)
	case size == 0:
		size = defaultPageSize
	}
	fingerprint := queryFingerprint(names, req.GetFilter(), desc)
	var after *pageKey
	if tok := req.GetPageToken(); tok != "" {
		k, err := decodePageToken(tok, fingerprint)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "Invalid page_token: %v; pass the next_page_token of a call with the same resource_names, filter and order_by.", err)
		}
		after = &k
	}

	if err := e.inject(ctx, MethodListLogEntries, names...); err != nil {
		return nil, err
	}
	call := callerOf(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.chargeReadQuotaLocked(call.quotaProject); err != nil {
		return nil, err
	}
	var since time.Time
	if !filter.hasTimestamp {
		e.counters.ListWithoutTimestamp++
		since = e.clock().Add(-DefaultWindow)
	}
	parents := make(map[string]bool, len(names))
	for _, n := range names {
		parents[n] = true
	}
	var hits []storedEntry
	for _, s := range e.entries {
		if !parents[s.parent] {
			continue
		}
		if !since.IsZero() && s.entry.GetTimestamp().AsTime().Before(since) {
			continue
		}
		if filter.root != nil && !filter.root.match(s.entry, auditPayload(s.entry)) {
			continue
		}
		hits = append(hits, s)
	}
	slices.SortFunc(hits, func(a, b storedEntry) int {
		c := keyOf(a).compare(keyOf(b))
		if desc {
			return -c
		}
		return c
	})
	if after != nil {
		i, _ := slices.BinarySearchFunc(hits, *after, func(s storedEntry, k pageKey) int {
			c := keyOf(s).compare(k)
			if desc {
				c = -c
			}
			if c == 0 {
				return -1 // the token's own entry was already returned
			}
			return c
		})
		hits = hits[i:]
	}
	resp := &loggingpb.ListLogEntriesResponse{}
	if len(hits) > size {
		resp.NextPageToken = encodePageToken(keyOf(hits[size-1]), fingerprint)
		hits = hits[:size]
	}
	for _, s := range hits {
		resp.Entries = append(resp.Entries, proto.Clone(s.entry).(*loggingpb.LogEntry))
	}
	return resp, nil
}

// chargeReadQuotaLocked counts one entries.list call against the read
// quota of quotaProject; the caller holds mu.
func (e *Emulator) chargeReadQuotaLocked(quotaProject string) error {
	if e.readQuota < 0 {
		return nil
	}
	now := e.clock()
	window := now.Add(-time.Minute)
	calls := slices.DeleteFunc(e.quota[quotaProject], func(t time.Time) bool { return !t.After(window) })
	if len(calls) >= e.readQuota {
		e.quota[quotaProject] = calls
		e.counters.QuotaExceeded++
		wait := calls[0].Add(time.Minute).Sub(now)
		return exhausted(fmt.Sprintf("Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'logging.googleapis.com' (%d per minute): read through one parent or an aggregated sink instead of one call per project.", e.readQuota), wait)
	}
	e.quota[quotaProject] = append(calls, now)
	return nil
}

// auditPayload unpacks an entry's AuditLog payload, or nil.
func auditPayload(entry *loggingpb.LogEntry) *audit.AuditLog {
	pp := entry.GetProtoPayload()
	if pp == nil {
		return nil
	}
	al := &audit.AuditLog{}
	if err := pp.UnmarshalTo(al); err != nil {
		return nil
	}
	return al
}

// pageKey is an entry's position in timestamp order.
type pageKey struct {
	nanos int64
	seq   uint64
}

func keyOf(s storedEntry) pageKey {
	return pageKey{s.entry.GetTimestamp().AsTime().UnixNano(), s.seq}
}

func (k pageKey) compare(o pageKey) int {
	switch {
	case k.nanos < o.nanos:
		return -1
	case k.nanos > o.nanos:
		return 1
	case k.seq < o.seq:
		return -1
	case k.seq > o.seq:
		return 1
	}
	return 0
}

// queryFingerprint identifies a query so a page token is only accepted for
// the query that issued it.
func queryFingerprint(names []string, filter string, desc bool) string {
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00", n)
	}
	fmt.Fprintf(h, "%s\x00%v", filter, desc)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func encodePageToken(k pageKey, fingerprint string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s|%d|%d", fingerprint, k.nanos, k.seq))
}

func decodePageToken(tok, fingerprint string) (pageKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return pageKey{}, fmt.Errorf("it is not a token this emulator issued")
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return pageKey{}, fmt.Errorf("it is not a token this emulator issued")
	}
	if parts[0] != fingerprint {
		return pageKey{}, fmt.Errorf("it was issued for a different query")
	}
	nanos, err1 := strconv.ParseInt(parts[1], 10, 64)
	seq, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return pageKey{}, fmt.Errorf("it is not a token this emulator issued")
	}
	return pageKey{nanos, seq}, nil
}
