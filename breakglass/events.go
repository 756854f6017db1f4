package breakglass

import (
	"fmt"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
)

// Source names an audit log format that Scan reads.
type Source string

// The audit log formats of CLI.md's `breakglass scan --source`.
const (
	// SourceCloudTrail: CloudTrail records, as trail files
	// ({"Records":[…]}), JSON lines, LookupEvents output (each event's
	// CloudTrailEvent string) or EventBridge envelopes (the "detail").
	SourceCloudTrail Source = "cloudtrail"
	// SourceGCPAudit: GCP LogEntry JSON of Cloud Audit Logs, as written by
	// `gcloud logging read --format=json` or a Cloud Storage sink.
	SourceGCPAudit Source = "gcp-audit"
	// SourceAzureActivity: Azure Activity Log events, in the REST / `az
	// monitor activity-log list` shape or the diagnostic-settings shape
	// (storage account, Event Hubs).
	SourceAzureActivity Source = "azure-activity"
	// SourceAzureSignIn: Entra ID sign-in logs, as Microsoft Graph
	// auditLogs/signIns pages ({"value":[…]}) or diagnostic-settings records.
	SourceAzureSignIn Source = "azure-signin"
)

// Sources lists every Source, in the order help text shows them.
var Sources = []Source{SourceCloudTrail, SourceGCPAudit, SourceAzureActivity, SourceAzureSignIn}

// ParseSource returns the Source named s.
func ParseSource(s string) (Source, error) {
	for _, src := range Sources {
		if string(src) == s {
			return src, nil
		}
	}
	names := make([]string, len(Sources))
	for i, src := range Sources {
		names[i] = string(src)
	}
	return "", fmt.Errorf("unknown log source %q: use one of %s", s, strings.Join(names, ", "))
}

// Cloud returns the cloud whose identities appear in the source's records.
func (s Source) Cloud() model.Cloud {
	switch s {
	case SourceCloudTrail:
		return model.CloudAWS
	case SourceGCPAudit:
		return model.CloudGCP
	case SourceAzureActivity, SourceAzureSignIn:
		return model.CloudAzure
	}
	return ""
}

// parser returns the record parser of the source.
func (s Source) parser() func([]byte) (*ActorEvent, error) {
	switch s {
	case SourceCloudTrail:
		return parseCloudTrail
	case SourceGCPAudit:
		return parseGCPAudit
	case SourceAzureActivity:
		return parseAzureActivity
	case SourceAzureSignIn:
		return parseAzureSignIn
	}
	return nil
}

// Outcome says whether the audited action succeeded. A failed sign-in with a
// break-glass account is a detection too: someone has, or is guessing, its
// credentials.
type Outcome string

// Outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
)

// Position locates a record in its input.
type Position struct {
	File string
	// Record is the 1-based index of the record in the file, counting
	// malformed ones.
	Record int
	// Line is the 1-based line on which the record starts.
	Line int
	// Offset is the byte offset of the record's first byte, in the
	// decompressed data when Decompressed is set.
	Offset       int64
	Decompressed bool
}

// String renders the position for people: "trail.json: record 3 (line 1, byte 2047)".
func (p Position) String() string {
	where := fmt.Sprintf("line %d, byte %d", p.Line, p.Offset)
	if p.Decompressed {
		where += " of the decompressed data"
	}
	file := p.File
	if file == "" {
		file = "-"
	}
	if p.Record > 0 {
		return fmt.Sprintf("%s: record %d (%s)", file, p.Record, where)
	}
	return fmt.Sprintf("%s: %s", file, where)
}

// Actor is who performed an audited action, as the record names them. Only
// the fields of the record's cloud are set. Nothing else in a record (request
// parameters, resources, policy bindings) is an actor.
type Actor struct {
	// AWS, from CloudTrail's userIdentity.
	Type      string // IAMUser, Root, AssumedRole, FederatedUser, AWSService, …
	ARN       string
	AccountID string
	UserName  string
	// IssuerARN is sessionContext.sessionIssuer.arn: for an assumed-role
	// session, the role's ARN (arn:aws:iam::ACCT:role/PATH/NAME).
	IssuerARN string
	// IssuerType and IssuerUserName are sessionIssuer.type and .userName
	// ("Role" and the role's name for role sessions).
	IssuerType      string
	IssuerUserName  string
	IssuerAccountID string

	// Emails are GCP principal emails: authenticationInfo.principalEmail and
	// the first-party principals of a service account delegation chain.
	Emails []string
	// Subjects are GCP principalSubject values (user:EMAIL,
	// principal://iam.googleapis.com/…).
	Subjects []string

	// UPNs and ObjectIDs are Azure identities: the caller, the upn and
	// objectidentifier claims, or a sign-in's userPrincipalName and userId.
	UPNs      []string
	ObjectIDs []string
}

// ActorEvent is one audit record reduced to what break-glass detection
// needs: who did what, when, from where, and whether it worked.
type ActorEvent struct {
	Cloud     model.Cloud
	EventID   string
	EventName string
	// Time is zero when the record has no readable time; RawTime keeps the
	// record's text either way.
	Time     time.Time
	RawTime  string
	SourceIP string
	Outcome  Outcome
	Actor    Actor
	Position Position
	// Raw is the record's text; Scan sets it on the events of detections
	// only.
	Raw []byte
}

// parseTime reads the RFC 3339 times the audit formats use (any fraction of
// a second); it returns the zero time for anything else.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// TimeText returns the event time as RFC 3339 in UTC, or the record's own
// text when it could not be read.
func (e *ActorEvent) TimeText() string {
	if e.Time.IsZero() {
		return e.RawTime
	}
	return e.Time.UTC().Format(time.RFC3339)
}
