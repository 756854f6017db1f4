package breakglass

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/elevatehq/elevate/model"
)

// Claim names that carry the caller's identity in Activity Log events.
const (
	claimUPN      = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	claimObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
)

// localizable is an Activity Log value that is either a plain string or a
// {"value": …, "localizedValue": …} object, depending on the export shape.
type localizable string

func (l *localizable) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = localizable(s)
	case len(b) > 0 && b[0] == '{':
		var v struct {
			Value string `json:"value"`
		}
		if err := decodeLenient(b, &v); err != nil {
			return err
		}
		*l = localizable(v.Value)
	}
	return nil
}

// azureActivityEvent holds the fields of an Activity Log event in both
// export shapes: REST / `az monitor activity-log list` (caller, claims,
// eventTimestamp, status.value) and diagnostic settings to a storage account
// or Event Hubs (time, identity.claims, resultType, callerIpAddress).
// authorization, properties and the request body are deliberately absent:
// an account named there is a target, not the actor.
type azureActivityEvent struct {
	Caller         string         `json:"caller"`
	Claims         map[string]any `json:"claims"`
	EventDataID    string         `json:"eventDataId"`
	CorrelationID  string         `json:"correlationId"`
	EventTimestamp string         `json:"eventTimestamp"`
	OperationName  localizable    `json:"operationName"`
	Status         localizable    `json:"status"`
	HTTPRequest    *struct {
		ClientIPAddress string `json:"clientIpAddress"`
	} `json:"httpRequest"`

	// Diagnostic-settings shape.
	Time            string `json:"time"`
	ResultType      string `json:"resultType"`
	CallerIPAddress string `json:"callerIpAddress"`
	Identity        *struct {
		Claims map[string]any `json:"claims"`
	} `json:"identity"`
}

// parseAzureActivity reads one Activity Log event.
func parseAzureActivity(raw []byte) (*ActorEvent, error) {
	var e azureActivityEvent
	if err := decodeLenient(raw, &e); err != nil {
		return nil, fmt.Errorf("decoding Azure Activity Log event: %w", err)
	}
	ev := &ActorEvent{
		Cloud:     model.CloudAzure,
		EventID:   firstNonEmpty(e.EventDataID, e.CorrelationID),
		EventName: string(e.OperationName),
		RawTime:   firstNonEmpty(e.EventTimestamp, e.Time),
		SourceIP:  e.CallerIPAddress,
		Outcome:   OutcomeSuccess,
	}
	ev.Time = parseTime(ev.RawTime)
	if e.HTTPRequest != nil && e.HTTPRequest.ClientIPAddress != "" {
		ev.SourceIP = e.HTTPRequest.ClientIPAddress
	}
	if strings.EqualFold(string(e.Status), "Failed") || strings.EqualFold(e.ResultType, "Failure") || strings.EqualFold(e.ResultType, "Failed") {
		ev.Outcome = OutcomeFailure
	}
	addAzureIdentity(&ev.Actor, e.Caller)
	claims := e.Claims
	if claims == nil && e.Identity != nil {
		claims = e.Identity.Claims
	}
	for _, name := range []string{claimUPN, "upn"} {
		if s, ok := claims[name].(string); ok {
			ev.Actor.UPNs = appendNonEmpty(ev.Actor.UPNs, s)
		}
	}
	for _, name := range []string{claimObjectID, "oid"} {
		if s, ok := claims[name].(string); ok {
			ev.Actor.ObjectIDs = appendNonEmpty(ev.Actor.ObjectIDs, s)
		}
	}
	return ev, nil
}

// addAzureIdentity files a caller under object IDs when it is a GUID (the
// caller of a service principal or managed identity) and under UPNs
// otherwise.
func addAzureIdentity(a *Actor, caller string) {
	if caller == "" {
		return
	}
	if isGUID(caller) {
		a.ObjectIDs = append(a.ObjectIDs, caller)
		return
	}
	a.UPNs = append(a.UPNs, caller)
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// entraSignIn is a Microsoft Graph signIn resource.
type entraSignIn struct {
	ID                string `json:"id"`
	CreatedDateTime   string `json:"createdDateTime"`
	UserPrincipalName string `json:"userPrincipalName"`
	UserID            string `json:"userId"`
	IPAddress         string `json:"ipAddress"`
	AppDisplayName    string `json:"appDisplayName"`
	Status            *struct {
		ErrorCode int64 `json:"errorCode"`
	} `json:"status"`
}

// entraSignInRecord is a signIn as Graph returns it, or a diagnostic-settings
// SignInLogs record that carries the signIn in properties.
type entraSignInRecord struct {
	entraSignIn
	Time            string       `json:"time"`
	ResultType      string       `json:"resultType"`
	CallerIPAddress string       `json:"callerIpAddress"`
	Properties      *entraSignIn `json:"properties"`
}

// parseAzureSignIn reads one Entra ID sign-in.
func parseAzureSignIn(raw []byte) (*ActorEvent, error) {
	var r entraSignInRecord
	if err := decodeLenient(raw, &r); err != nil {
		return nil, fmt.Errorf("decoding Entra sign-in: %w", err)
	}
	s := r.entraSignIn
	failed := s.Status != nil && s.Status.ErrorCode != 0
	if p := r.Properties; p != nil {
		s = *p
		failed = (s.Status != nil && s.Status.ErrorCode != 0) || (r.ResultType != "" && r.ResultType != "0")
		s.CreatedDateTime = firstNonEmpty(s.CreatedDateTime, r.Time)
		s.IPAddress = firstNonEmpty(s.IPAddress, r.CallerIPAddress)
	}
	ev := &ActorEvent{
		Cloud:     model.CloudAzure,
		EventID:   s.ID,
		EventName: "Sign-in",
		RawTime:   s.CreatedDateTime,
		Time:      parseTime(s.CreatedDateTime),
		SourceIP:  s.IPAddress,
		Outcome:   OutcomeSuccess,
	}
	if s.AppDisplayName != "" {
		ev.EventName = "Sign-in to " + s.AppDisplayName
	}
	if failed {
		ev.Outcome = OutcomeFailure
	}
	ev.Actor.UPNs = appendNonEmpty(ev.Actor.UPNs, s.UserPrincipalName)
	ev.Actor.ObjectIDs = appendNonEmpty(ev.Actor.ObjectIDs, s.UserID)
	return ev, nil
}
