package breakglass

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/elevatehq/elevate/model"
)

// decodeLenient decodes JSON into v. Values of an unexpected type (a string
// where an object was expected, say) leave their field empty instead of
// failing the record: only syntax makes a record malformed, so the fast and
// the full-decode paths agree on what is malformed.
func decodeLenient(raw []byte, v any) error {
	err := json.Unmarshal(raw, v)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return err
	}
	return nil
}

// cloudTrailRecord holds the fields of a CloudTrail record that break-glass
// detection reads, plus the wrappers of the other shapes CloudTrail events
// arrive in. requestParameters and resources are deliberately absent: an
// account named there is the target of the action, not its actor.
type cloudTrailRecord struct {
	UserIdentity     *cloudTrailIdentity        `json:"userIdentity"`
	EventTime        string                     `json:"eventTime"`
	EventName        string                     `json:"eventName"`
	EventID          string                     `json:"eventID"`
	SourceIPAddress  string                     `json:"sourceIPAddress"`
	ErrorCode        string                     `json:"errorCode"`
	ErrorMessage     string                     `json:"errorMessage"`
	ResponseElements map[string]json.RawMessage `json:"responseElements"`

	// CloudTrailEvent is set on LookupEvents output: the record itself, as a
	// JSON string.
	CloudTrailEvent *string `json:"CloudTrailEvent"`
	// Detail and DetailType are set on EventBridge envelopes.
	Detail     json.RawMessage `json:"detail"`
	DetailType string          `json:"detail-type"`
}

type cloudTrailIdentity struct {
	Type           string `json:"type"`
	ARN            string `json:"arn"`
	AccountID      string `json:"accountId"`
	UserName       string `json:"userName"`
	SessionContext *struct {
		SessionIssuer *struct {
			Type      string `json:"type"`
			ARN       string `json:"arn"`
			AccountID string `json:"accountId"`
			UserName  string `json:"userName"`
		} `json:"sessionIssuer"`
	} `json:"sessionContext"`
}

// parseCloudTrail reads one CloudTrail record: a trail-file or JSON-lines
// record, a LookupEvents event (its CloudTrailEvent string) or an EventBridge
// envelope (its detail).
func parseCloudTrail(raw []byte) (*ActorEvent, error) {
	var rec cloudTrailRecord
	if err := decodeLenient(raw, &rec); err != nil {
		return nil, fmt.Errorf("decoding CloudTrail record: %w", err)
	}
	switch {
	case rec.CloudTrailEvent != nil:
		inner := cloudTrailRecord{}
		if err := decodeLenient([]byte(*rec.CloudTrailEvent), &inner); err != nil {
			return nil, fmt.Errorf("decoding the CloudTrailEvent string of a LookupEvents event: %w", err)
		}
		rec = inner
	case len(rec.Detail) > 0 && rec.DetailType != "":
		inner := cloudTrailRecord{}
		if err := decodeLenient(rec.Detail, &inner); err != nil {
			return nil, fmt.Errorf("decoding the detail of an EventBridge event: %w", err)
		}
		rec = inner
	}
	return rec.event(), nil
}

// event converts a decoded CloudTrail record.
func (rec *cloudTrailRecord) event() *ActorEvent {
	ev := &ActorEvent{
		Cloud:     model.CloudAWS,
		EventID:   rec.EventID,
		EventName: rec.EventName,
		RawTime:   rec.EventTime,
		Time:      parseTime(rec.EventTime),
		SourceIP:  rec.SourceIPAddress,
		Outcome:   cloudTrailOutcome(rec),
	}
	if id := rec.UserIdentity; id != nil {
		ev.Actor = Actor{Type: id.Type, ARN: id.ARN, AccountID: id.AccountID, UserName: id.UserName}
		if id.SessionContext != nil && id.SessionContext.SessionIssuer != nil {
			is := id.SessionContext.SessionIssuer
			ev.Actor.IssuerARN = is.ARN
			ev.Actor.IssuerType = is.Type
			ev.Actor.IssuerUserName = is.UserName
			ev.Actor.IssuerAccountID = is.AccountID
		}
	}
	return ev
}

// cloudTrailOutcome: sign-in events say Success or Failure in
// responseElements under the event's own name (ConsoleLogin, CheckMfa,
// SwitchRole, …); any other event failed when it carries an errorCode or
// errorMessage. A failed sign-in has an errorMessage too ("Failed
// authentication").
func cloudTrailOutcome(rec *cloudTrailRecord) Outcome {
	if v, ok := rec.ResponseElements[rec.EventName]; ok {
		var s string
		if json.Unmarshal(v, &s) == nil {
			switch s {
			case "Failure":
				return OutcomeFailure
			case "Success":
				if rec.ErrorCode == "" {
					return OutcomeSuccess
				}
			}
		}
	}
	if rec.ErrorCode != "" || rec.ErrorMessage != "" {
		return OutcomeFailure
	}
	return OutcomeSuccess
}
