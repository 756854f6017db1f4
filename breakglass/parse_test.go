package breakglass

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/elevatehq/elevate/model"
)

func TestParsers(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) (*ActorEvent, error)
		raw   string
		want  ActorEvent
	}{
		{"CloudTrail assumed-role session", parseCloudTrail,
			`{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/R/s","accountId":"1","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/R","accountId":"1","userName":"R"}}},"eventTime":"2026-11-29T03:12:00Z","eventName":"GetObject","eventID":"e","sourceIPAddress":"192.0.2.1","requestParameters":{"userName":"someone-else"}}`,
			ActorEvent{Cloud: model.CloudAWS, EventID: "e", EventName: "GetObject", RawTime: "2026-11-29T03:12:00Z", SourceIP: "192.0.2.1", Outcome: OutcomeSuccess,
				Actor: Actor{Type: "AssumedRole", ARN: "arn:aws:sts::1:assumed-role/R/s", AccountID: "1", IssuerARN: "arn:aws:iam::1:role/R", IssuerType: "Role", IssuerUserName: "R", IssuerAccountID: "1"}}},
		{"CloudTrail failed MFA check (sign-in event other than ConsoleLogin)", parseCloudTrail,
			`{"userIdentity":{"type":"IAMUser","accountId":"1","userName":"u"},"eventName":"CheckMfa","responseElements":{"CheckMfa":"Failure"},"eventID":"e"}`,
			ActorEvent{Cloud: model.CloudAWS, EventID: "e", EventName: "CheckMfa", Outcome: OutcomeFailure, Actor: Actor{Type: "IAMUser", AccountID: "1", UserName: "u"}}},
		{"CloudTrail API call with an errorCode", parseCloudTrail,
			`{"userIdentity":{"type":"Root","accountId":"1"},"eventName":"DeleteTrail","errorCode":"AccessDenied","eventID":"e"}`,
			ActorEvent{Cloud: model.CloudAWS, EventID: "e", EventName: "DeleteTrail", Outcome: OutcomeFailure, Actor: Actor{Type: "Root", AccountID: "1"}}},
		{"CloudTrail EventBridge envelope", parseCloudTrail,
			`{"version":"0","id":"x","detail-type":"AWS Console Sign In via CloudTrail","source":"aws.signin","account":"1","detail":{"userIdentity":{"type":"Root","accountId":"1"},"eventName":"ConsoleLogin","responseElements":{"ConsoleLogin":"Success"},"eventID":"inner"}}`,
			ActorEvent{Cloud: model.CloudAWS, EventID: "inner", EventName: "ConsoleLogin", Outcome: OutcomeSuccess, Actor: Actor{Type: "Root", AccountID: "1"}}},
		{"CloudTrail LookupEvents event", parseCloudTrail,
			`{"EventId":"outer","EventName":"ConsoleLogin","EventTime":1795921800.0,"Username":"root","CloudTrailEvent":"{\"userIdentity\":{\"type\":\"Root\",\"accountId\":\"1\"},\"eventName\":\"ConsoleLogin\",\"eventID\":\"inner\"}"}`,
			ActorEvent{Cloud: model.CloudAWS, EventID: "inner", EventName: "ConsoleLogin", Outcome: OutcomeSuccess, Actor: Actor{Type: "Root", AccountID: "1"}}},
		{"CloudTrail record with oddly typed fields", parseCloudTrail,
			`{"userIdentity":"not an object","responseElements":"x","eventName":"X","eventID":"e"}`,
			ActorEvent{Cloud: model.CloudAWS, EventID: "e", EventName: "X", Outcome: OutcomeSuccess}},
		{"GCP failed call through impersonation", parseGCPAudit,
			`{"insertId":"i","timestamp":"2026-11-29T03:12:00.123456789Z","protoPayload":{"methodName":"m","status":{"code":7,"message":"PERMISSION_DENIED"},"authenticationInfo":{"principalEmail":"sa@p.iam.gserviceaccount.com","principalSubject":"serviceAccount:sa@p.iam.gserviceaccount.com","serviceAccountDelegationInfo":[{"firstPartyPrincipal":{"principalEmail":"bg@example.com"}},{"principalSubject":"principal://iam.googleapis.com/x"}]},"requestMetadata":{"callerIp":"192.0.2.2"},"request":{"policy":{"bindings":[{"members":["user:other@example.com"]}]}}}}`,
			ActorEvent{Cloud: model.CloudGCP, EventID: "i", EventName: "m", RawTime: "2026-11-29T03:12:00.123456789Z", SourceIP: "192.0.2.2", Outcome: OutcomeFailure,
				Actor: Actor{Emails: []string{"sa@p.iam.gserviceaccount.com", "bg@example.com"}, Subjects: []string{"serviceAccount:sa@p.iam.gserviceaccount.com", "principal://iam.googleapis.com/x"}}}},
		{"GCP entry without an audit payload", parseGCPAudit,
			`{"insertId":"i","textPayload":"bg@example.com did something","timestamp":"2026-11-29T03:12:00Z"}`,
			ActorEvent{Cloud: model.CloudGCP, EventID: "i", RawTime: "2026-11-29T03:12:00Z", Outcome: OutcomeSuccess}},
		{"Azure activity: object ID from the claims only", parseAzureActivity,
			`{"caller":"renamed@contoso.com","claims":{"http://schemas.microsoft.com/identity/claims/objectidentifier":"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e","http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"renamed@contoso.com"},"eventDataId":"d","eventTimestamp":"2026-11-29T03:12:00.1234567Z","operationName":{"value":"op","localizedValue":"Op"},"status":{"value":"Failed"},"httpRequest":{"clientIpAddress":"192.0.2.3"}}`,
			ActorEvent{Cloud: model.CloudAzure, EventID: "d", EventName: "op", RawTime: "2026-11-29T03:12:00.1234567Z", SourceIP: "192.0.2.3", Outcome: OutcomeFailure,
				Actor: Actor{UPNs: []string{"renamed@contoso.com", "renamed@contoso.com"}, ObjectIDs: []string{"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e"}}}},
		{"Azure activity, diagnostic-settings shape", parseAzureActivity,
			`{"time":"2026-11-29T03:12:00Z","operationName":"MICROSOFT.X/WRITE","resultType":"Failure","callerIpAddress":"192.0.2.4","correlationId":"c","identity":{"claims":{"oid":"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e","upn":"bg@contoso.com"}}}`,
			ActorEvent{Cloud: model.CloudAzure, EventID: "c", EventName: "MICROSOFT.X/WRITE", RawTime: "2026-11-29T03:12:00Z", SourceIP: "192.0.2.4", Outcome: OutcomeFailure,
				Actor: Actor{UPNs: []string{"bg@contoso.com"}, ObjectIDs: []string{"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e"}}}},
		{"Entra sign-in, PowerShell property case", parseAzureSignIn,
			`{"Id":"s","CreatedDateTime":"2026-11-29T03:12:00Z","UserPrincipalName":"bg@contoso.com","UserId":"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e","IPAddress":"192.0.2.5","AppDisplayName":"Azure Portal","Status":{"ErrorCode":50126}}`,
			ActorEvent{Cloud: model.CloudAzure, EventID: "s", EventName: "Sign-in to Azure Portal", RawTime: "2026-11-29T03:12:00Z", SourceIP: "192.0.2.5", Outcome: OutcomeFailure,
				Actor: Actor{UPNs: []string{"bg@contoso.com"}, ObjectIDs: []string{"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e"}}}},
		{"Entra sign-in, diagnostic-settings shape", parseAzureSignIn,
			`{"time":"2026-11-29T03:12:00Z","resultType":"50126","callerIpAddress":"192.0.2.6","identity":"Break Glass","properties":{"id":"s","userPrincipalName":"bg@contoso.com","userId":"u"}}`,
			ActorEvent{Cloud: model.CloudAzure, EventID: "s", EventName: "Sign-in", RawTime: "2026-11-29T03:12:00Z", SourceIP: "192.0.2.6", Outcome: OutcomeFailure,
				Actor: Actor{UPNs: []string{"bg@contoso.com"}, ObjectIDs: []string{"u"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, *got, cmpopts.IgnoreFields(ActorEvent{}, "Time"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tc.want.RawTime != "" && got.TimeText() != strings.Split(tc.want.RawTime, ".")[0]+"Z" && got.TimeText() != tc.want.RawTime {
				t.Errorf("TimeText = %q for %q", got.TimeText(), tc.want.RawTime)
			}
		})
	}
}

func TestParseCloudTrailRejectsABrokenLookupEventsString(t *testing.T) {
	_, err := parseCloudTrail([]byte(`{"EventId":"x","CloudTrailEvent":"{\"userIdentity\":{"}`))
	if err == nil || !strings.Contains(err.Error(), "CloudTrailEvent string of a LookupEvents event") {
		t.Fatalf("err = %v, want a decoding error naming the CloudTrailEvent string", err)
	}
}

func TestEventTimeText(t *testing.T) {
	for raw, want := range map[string]string{
		"2026-11-29T03:12:00Z":         "2026-11-29T03:12:00Z",
		"2026-11-29T03:12:00.1234567Z": "2026-11-29T03:12:00Z",
		"2026-11-29T04:12:00+01:00":    "2026-11-29T03:12:00Z",
		"Nov 29, 2026 3:12:00 AM":      "Nov 29, 2026 3:12:00 AM",
		"":                             "",
	} {
		ev := ActorEvent{RawTime: raw, Time: parseTime(raw)}
		if got := ev.TimeText(); got != want {
			t.Errorf("TimeText(%q) = %q, want %q", raw, got, want)
		}
	}
}
