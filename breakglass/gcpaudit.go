package breakglass

import (
	"fmt"

	"github.com/elevatehq/elevate/model"
)

// gcpLogEntry holds the fields of a Cloud Audit Logs LogEntry that
// break-glass detection reads. protoPayload.request, .response, .serviceData
// and .authorizationInfo are deliberately absent: an email there (a binding
// in a SetIamPolicy request, say) is a target, not the actor.
type gcpLogEntry struct {
	InsertID     string `json:"insertId"`
	Timestamp    string `json:"timestamp"`
	ProtoPayload *struct {
		MethodName string `json:"methodName"`
		Status     *struct {
			Code int64 `json:"code"`
		} `json:"status"`
		AuthenticationInfo *struct {
			PrincipalEmail               string `json:"principalEmail"`
			PrincipalSubject             string `json:"principalSubject"`
			ServiceAccountDelegationInfo []struct {
				FirstPartyPrincipal *struct {
					PrincipalEmail string `json:"principalEmail"`
				} `json:"firstPartyPrincipal"`
				PrincipalSubject string `json:"principalSubject"`
			} `json:"serviceAccountDelegationInfo"`
		} `json:"authenticationInfo"`
		RequestMetadata *struct {
			CallerIP string `json:"callerIp"`
		} `json:"requestMetadata"`
	} `json:"protoPayload"`
}

// parseGCPAudit reads one GCP LogEntry. Entries without an audit payload
// yield an event with no actor.
func parseGCPAudit(raw []byte) (*ActorEvent, error) {
	var e gcpLogEntry
	if err := decodeLenient(raw, &e); err != nil {
		return nil, fmt.Errorf("decoding GCP log entry: %w", err)
	}
	ev := &ActorEvent{
		Cloud:   model.CloudGCP,
		EventID: e.InsertID,
		RawTime: e.Timestamp,
		Time:    parseTime(e.Timestamp),
		Outcome: OutcomeSuccess,
	}
	p := e.ProtoPayload
	if p == nil {
		return ev, nil
	}
	ev.EventName = p.MethodName
	if p.Status != nil && p.Status.Code != 0 {
		ev.Outcome = OutcomeFailure
	}
	if p.RequestMetadata != nil {
		ev.SourceIP = p.RequestMetadata.CallerIP
	}
	if a := p.AuthenticationInfo; a != nil {
		ev.Actor.Emails = appendNonEmpty(ev.Actor.Emails, a.PrincipalEmail)
		ev.Actor.Subjects = appendNonEmpty(ev.Actor.Subjects, a.PrincipalSubject)
		// Whoever impersonated the service account acted through it: a
		// break-glass user at the start of a delegation chain is a use.
		for _, d := range a.ServiceAccountDelegationInfo {
			if d.FirstPartyPrincipal != nil {
				ev.Actor.Emails = appendNonEmpty(ev.Actor.Emails, d.FirstPartyPrincipal.PrincipalEmail)
			}
			ev.Actor.Subjects = appendNonEmpty(ev.Actor.Subjects, d.PrincipalSubject)
		}
	}
	return ev, nil
}

func appendNonEmpty(xs []string, s string) []string {
	if s == "" {
		return xs
	}
	return append(xs, s)
}
