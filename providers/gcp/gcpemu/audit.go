package gcpemu

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/genproto/googleapis/cloud/audit"
	iamlogging "google.golang.org/genproto/googleapis/iam/v1/logging"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Audit log IDs, URL-encoded as they appear in logName.
const (
	ActivityLogID   = "cloudaudit.googleapis.com%2Factivity"
	DataAccessLogID = "cloudaudit.googleapis.com%2Fdata_access"
)

// resourceManagerService is the serviceName of Resource Manager audit
// entries.
const resourceManagerService = "cloudresourcemanager.googleapis.com"

// caller is who made a call, as audit entries record it.
type caller struct {
	principal, ip, userAgent, quotaProject string
}

// callerOf reads the caller from a call's metadata and peer address.
func callerOf(ctx context.Context) caller {
	c := caller{principal: principalOf(ctx)}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		c.ip = host
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("user-agent"); len(v) > 0 {
			c.userAgent = v[0]
		}
		if v := md.Get("x-goog-user-project"); len(v) > 0 {
			c.quotaProject = v[0]
		}
	}
	return c
}

// storedEntry is one log entry with its arrival order, which breaks ties
// between equal timestamps.
type storedEntry struct {
	seq    uint64
	parent string // projects/P, folders/F or organizations/O
	entry  *loggingpb.LogEntry
}

// auditRecord describes one audited call.
type auditRecord struct {
	service  service
	method   string
	resource string
	caller   caller
	request  proto.Message
	err      error
	delta    *iampb.PolicyDelta // SetIamPolicy only
}

// auditLocked appends the audit entry of one call; the caller holds mu.
// SetIamPolicy goes to the Admin Activity log, reads to Data Access.
func (e *Emulator) auditLocked(rec auditRecord) {
	logID, severity := DataAccessLogID, ltype.LogSeverity_INFO
	if rec.method == MethodSetIamPolicy {
		logID, severity = ActivityLogID, ltype.LogSeverity_NOTICE
	}
	st := status.Convert(rec.err)
	if rec.err != nil {
		severity = ltype.LogSeverity_ERROR
	}
	al := &audit.AuditLog{
		ServiceName:  resourceManagerService,
		MethodName:   rec.service.full + "." + rec.method,
		ResourceName: rec.resource,
		Status:       &spb.Status{Code: int32(st.Code()), Message: st.Message()},
		AuthenticationInfo: &audit.AuthenticationInfo{
			PrincipalEmail: rec.caller.principal,
		},
		AuthorizationInfo: []*audit.AuthorizationInfo{{
			Resource:   rec.resource,
			Permission: permissionFor(rec.method, rec.resource),
			Granted:    true,
		}},
		RequestMetadata: &audit.RequestMetadata{
			CallerIp:                rec.caller.ip,
			CallerSuppliedUserAgent: rec.caller.userAgent,
		},
		Request: requestStruct(rec.request),
	}
	if rec.err == nil {
		al.Status = &spb.Status{}
	}
	if rec.delta != nil {
		if sd, err := anypb.New(&iamlogging.AuditData{PolicyDelta: rec.delta}); err == nil {
			al.ServiceData = sd
		}
	}
	e.appendAuditLocked(rec.resource, logID, severity, al, time.Time{})
}

// requestStruct renders a request as the JSON struct audit entries carry,
// with its @type.
func requestStruct(m proto.Message) *structpb.Struct {
	if m == nil {
		return nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		return nil
	}
	s.Fields["@type"] = structpb.NewStringValue("type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()))
	return s
}

// appendAuditLocked stores an AuditLog entry in resource's log logID; a
// zero at means now. The caller holds mu.
func (e *Emulator) appendAuditLocked(resource, logID string, severity ltype.LogSeverity, al *audit.AuditLog, at time.Time) *loggingpb.LogEntry {
	payload, err := anypb.New(al)
	if err != nil {
		return nil
	}
	if at.IsZero() {
		at = e.clock()
	}
	ts := timestamppb.New(at)
	entry := &loggingpb.LogEntry{
		LogName:          resource + "/logs/" + logID,
		Resource:         monitoredResource(resource),
		Timestamp:        ts,
		ReceiveTimestamp: ts,
		Severity:         severity,
		InsertId:         e.newInsertIDLocked(),
		Payload:          &loggingpb.LogEntry_ProtoPayload{ProtoPayload: payload},
	}
	e.storeEntryLocked(resource, entry)
	return entry
}

func (e *Emulator) storeEntryLocked(parent string, entry *loggingpb.LogEntry) {
	e.entrySeq++
	if len(e.entries) >= e.maxEntries {
		drop := max(e.maxEntries/10, 1)
		e.entries = slices.Delete(e.entries, 0, min(drop, len(e.entries)))
	}
	e.entries = append(e.entries, storedEntry{seq: e.entrySeq, parent: parent, entry: entry})
}

// monitoredResource is the resource an audit entry of a Resource Manager
// resource is filed under.
func monitoredResource(resource string) *monitoredres.MonitoredResource {
	kind, id, _ := strings.Cut(resource, "/")
	switch kind {
	case "projects":
		return &monitoredres.MonitoredResource{Type: "project", Labels: map[string]string{"project_id": id}}
	case "folders":
		return &monitoredres.MonitoredResource{Type: "folder", Labels: map[string]string{"folder_id": id}}
	case "organizations":
		return &monitoredres.MonitoredResource{Type: "organization", Labels: map[string]string{"organization_id": id}}
	}
	return &monitoredres.MonitoredResource{Type: "global"}
}

// AuditRecord describes an audit entry to inject: an event GCP would log
// that elevate did not cause (a break-glass sign-in, a human's
// SetIamPolicy).
type AuditRecord struct {
	// Parent is the resource whose log holds the entry: projects/P,
	// folders/F or organizations/O.
	Parent string
	// Activity files the entry in the Admin Activity log; otherwise Data
	// Access.
	Activity bool
	// Time is the entry's timestamp; zero means the emulator's now.
	Time time.Time
	// ServiceName and MethodName are the audited API call, e.g.
	// "login.googleapis.com" and "google.login.LoginService.loginSuccess".
	ServiceName, MethodName string
	// ResourceName is the audited resource; default Parent.
	ResourceName string
	// Principal is authenticationInfo.principalEmail.
	Principal string
	// CallerIP is requestMetadata.callerIp.
	CallerIP string
	// Delta is the policy change of a SetIamPolicy entry.
	Delta []*iampb.BindingDelta
	// Failed records the call as failed (status code 7, PERMISSION_DENIED).
	Failed bool
}

// InjectAudit appends an audit entry built from rec and returns a copy of
// it.
func (e *Emulator) InjectAudit(rec AuditRecord) *loggingpb.LogEntry {
	logID, severity := DataAccessLogID, ltype.LogSeverity_INFO
	if rec.Activity {
		logID, severity = ActivityLogID, ltype.LogSeverity_NOTICE
	}
	if rec.ResourceName == "" {
		rec.ResourceName = rec.Parent
	}
	al := &audit.AuditLog{
		ServiceName:        rec.ServiceName,
		MethodName:         rec.MethodName,
		ResourceName:       rec.ResourceName,
		Status:             &spb.Status{},
		AuthenticationInfo: &audit.AuthenticationInfo{PrincipalEmail: rec.Principal},
		RequestMetadata:    &audit.RequestMetadata{CallerIp: rec.CallerIP},
	}
	if rec.Failed {
		al.Status = &spb.Status{Code: 7, Message: "PERMISSION_DENIED"}
		severity = ltype.LogSeverity_ERROR
	}
	if len(rec.Delta) > 0 {
		if sd, err := anypb.New(&iamlogging.AuditData{PolicyDelta: &iampb.PolicyDelta{BindingDeltas: rec.Delta}}); err == nil {
			al.ServiceData = sd
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	entry := e.appendAuditLocked(rec.Parent, logID, severity, al, rec.Time)
	return proto.Clone(entry).(*loggingpb.LogEntry)
}

// InjectLogEntry appends entry as given (a copy) to the log of its logName's
// parent. A missing timestamp is the emulator's now, a missing insert ID is
// generated. LogName must be PARENT/logs/LOG_ID.
func (e *Emulator) InjectLogEntry(entry *loggingpb.LogEntry) error {
	parent, _, ok := strings.Cut(entry.GetLogName(), "/logs/")
	if !ok {
		return &injectError{entry.GetLogName()}
	}
	if _, err := serviceOf(parent); err != nil {
		return &injectError{entry.GetLogName()}
	}
	entry = proto.Clone(entry).(*loggingpb.LogEntry)
	e.mu.Lock()
	defer e.mu.Unlock()
	if entry.Timestamp == nil {
		entry.Timestamp = timestamppb.New(e.clock())
	}
	if entry.ReceiveTimestamp == nil {
		entry.ReceiveTimestamp = entry.Timestamp
	}
	if entry.InsertId == "" {
		entry.InsertId = e.newInsertIDLocked()
	}
	if entry.Resource == nil {
		entry.Resource = monitoredResource(parent)
	}
	e.storeEntryLocked(parent, entry)
	return nil
}

type injectError struct{ logName string }

func (e *injectError) Error() string {
	return "injecting log entry: logName " + `"` + e.logName + `"` + " is not projects/ID/logs/LOG_ID, folders/ID/logs/LOG_ID or organizations/ID/logs/LOG_ID"
}

// LogEntries returns copies of every stored log entry of parent (all
// parents when parent is empty) in arrival order.
func (e *Emulator) LogEntries(parent string) []*loggingpb.LogEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*loggingpb.LogEntry
	for _, s := range e.entries {
		if parent == "" || s.parent == parent {
			out = append(out, proto.Clone(s.entry).(*loggingpb.LogEntry))
		}
	}
	return slices.Clip(out)
}
