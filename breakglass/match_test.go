package breakglass

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/elevatehq/elevate/model"
)

func matcherFor(t testing.TB, accounts ...string) *Matcher {
	t.Helper()
	m := &Matcher{byKey: map[string][]Account{}, needles: map[model.Cloud][]needle{}}
	for _, a := range accounts {
		m.Add(Account{Policy: "p", Principal: model.MustPrincipal(a)})
	}
	return m
}

func awsEvent(a Actor) *ActorEvent   { return &ActorEvent{Cloud: model.CloudAWS, Actor: a} }
func gcpEvent(a Actor) *ActorEvent   { return &ActorEvent{Cloud: model.CloudGCP, Actor: a} }
func azureEvent(a Actor) *ActorEvent { return &ActorEvent{Cloud: model.CloudAzure, Actor: a} }

const (
	aliceARN = "aws:arn:aws:iam::123456789012:user/breakglass-alice"
	rootARN  = "aws:arn:aws:iam::123456789012:root"
	roleARN  = "aws:arn:aws:iam::123456789012:role/BreakGlassAdmin"
)

// Each identity rule of the clouds, pinned: what is the same identity and
// what merely looks like it.
func TestMatcherIdentityRules(t *testing.T) {
	tests := []struct {
		name    string
		account string
		event   *ActorEvent
		want    bool
	}{
		// AWS IAM users.
		{"IAM user by ARN", aliceARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/breakglass-alice", AccountID: "123456789012", UserName: "breakglass-alice"}), true},
		{"a longer user name is another user", aliceARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/breakglass-alice2", AccountID: "123456789012", UserName: "breakglass-alice2"}), false},
		{"a shorter user name is another user", "aws:arn:aws:iam::123456789012:user/breakglass-alice2", awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/breakglass-alice", AccountID: "123456789012"}), false},
		{"same user name in another account", aliceARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::210987654321:user/breakglass-alice", AccountID: "210987654321", UserName: "breakglass-alice"}), false},
		{"IAM names ignore case", aliceARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/BreakGlass-Alice", AccountID: "123456789012"}), true},
		{"IAM user path is not part of the identity", aliceARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/emergency/breakglass-alice"}), true},
		{"failed sign-in without ARN: account and user name", aliceARN, awsEvent(Actor{Type: "IAMUser", AccountID: "123456789012", UserName: "breakglass-alice"}), true},
		{"failed sign-in with a hidden user name", aliceARN, awsEvent(Actor{Type: "IAMUser", AccountID: "123456789012", UserName: hiddenUserName}), false},
		{"GovCloud partition, same account and user", aliceARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws-us-gov:iam::123456789012:user/breakglass-alice"}), true},
		// The root user.
		{"root by ARN", rootARN, awsEvent(Actor{Type: "Root", ARN: "arn:aws:iam::123456789012:root", AccountID: "123456789012"}), true},
		{"root is its identity type, not an ARN alone", rootARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:root"}), false},
		{"root without ARN (failed sign-in)", rootARN, awsEvent(Actor{Type: "Root", AccountID: "123456789012"}), true},
		{"root of another account", rootARN, awsEvent(Actor{Type: "Root", ARN: "arn:aws:iam::210987654321:root", AccountID: "210987654321"}), false},
		{"another account acting (AWSAccount) is not root", rootARN, awsEvent(Actor{Type: "AWSAccount", AccountID: "123456789012"}), false},
		{"an IAM user of the account is not root", rootARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/ops", AccountID: "123456789012", UserName: "ops"}), false},
		// Role sessions.
		{"assumed-role session ARN", roleARN, awsEvent(Actor{Type: "AssumedRole", ARN: "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/alice"}), true},
		{"session issuer ARN, role with a path", roleARN, awsEvent(Actor{Type: "AssumedRole", IssuerARN: "arn:aws:iam::123456789012:role/emergency/BreakGlassAdmin"}), true},
		{"session issuer user name", roleARN, awsEvent(Actor{Type: "AssumedRole", AccountID: "123456789012", IssuerType: "Role", IssuerUserName: "BreakGlassAdmin"}), true},
		{"a longer role name is another role", roleARN, awsEvent(Actor{Type: "AssumedRole", ARN: "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin2/x", IssuerARN: "arn:aws:iam::123456789012:role/BreakGlassAdmin2"}), false},
		{"a session named like the role is not the role", roleARN, awsEvent(Actor{Type: "AssumedRole", ARN: "arn:aws:sts::123456789012:assumed-role/Ops/BreakGlassAdmin", IssuerARN: "arn:aws:iam::123456789012:role/Ops"}), false},
		{"a role account does not match a user of that name", roleARN, awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/BreakGlassAdmin"}), false},
		{"a session account matches its session", "aws:arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/alice", awsEvent(Actor{ARN: "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/alice"}), true},
		{"a session account does not match other sessions", "aws:arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/alice", awsEvent(Actor{ARN: "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/bob"}), false},
		{"an AWS account never matches a GCP event", aliceARN, gcpEvent(Actor{Emails: []string{"breakglass-alice"}}), false},
		// GCP.
		{"GCP user email", "gcp:user:breakglass-1@example.com", gcpEvent(Actor{Emails: []string{"breakglass-1@example.com"}}), true},
		{"GCP email ignores case", "gcp:user:breakglass-1@example.com", gcpEvent(Actor{Emails: []string{"BreakGlass-1@Example.COM"}}), true},
		{"GCP longer local part", "gcp:user:breakglass-1@example.com", gcpEvent(Actor{Emails: []string{"breakglass-10@example.com"}}), false},
		{"GCP longer domain", "gcp:user:breakglass-1@example.com", gcpEvent(Actor{Emails: []string{"breakglass-1@example.com.evil.example"}}), false},
		{"GCP service account", "gcp:serviceAccount:bg-sa@acme-prod.iam.gserviceaccount.com", gcpEvent(Actor{Emails: []string{"bg-sa@acme-prod.iam.gserviceaccount.com"}}), true},
		{"GCP principalSubject user:EMAIL", "gcp:user:breakglass-1@example.com", gcpEvent(Actor{Subjects: []string{"user:breakglass-1@example.com"}}), true},
		{"GCP workforce principal", "gcp:principal://iam.googleapis.com/locations/global/workforcePools/acme/subject/bg-1", gcpEvent(Actor{Subjects: []string{"principal://iam.googleapis.com/locations/global/workforcePools/acme/subject/bg-1"}}), true},
		{"plain user: email matches in GCP", "user:breakglass-1@example.com", gcpEvent(Actor{Emails: []string{"breakglass-1@example.com"}}), true},
		// Azure.
		{"Azure UPN", "azure:user:breakglass1@contoso.onmicrosoft.com", azureEvent(Actor{UPNs: []string{"breakglass1@contoso.onmicrosoft.com"}}), true},
		{"Azure UPN ignores case", "azure:user:breakglass1@contoso.onmicrosoft.com", azureEvent(Actor{UPNs: []string{"BREAKGLASS1@Contoso.OnMicrosoft.com"}}), true},
		{"Azure longer UPN", "azure:user:breakglass1@contoso.onmicrosoft.com", azureEvent(Actor{UPNs: []string{"breakglass10@contoso.onmicrosoft.com"}}), false},
		{"Azure object ID ignores case", "azure:object:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e", azureEvent(Actor{ObjectIDs: []string{"5A6B7C8D-9E0F-4A1B-8C2D-3E4F5A6B7C8E"}}), true},
		{"Azure UPN account does not match an object ID", "azure:user:breakglass1@contoso.onmicrosoft.com", azureEvent(Actor{ObjectIDs: []string{"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e"}}), false},
		{"plain user: email matches an Azure UPN", "user:breakglass1@contoso.onmicrosoft.com", azureEvent(Actor{UPNs: []string{"breakglass1@contoso.onmicrosoft.com"}}), true},
		{"plain user: email does not match AWS", "user:breakglass-alice@example.com", awsEvent(Actor{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/breakglass-alice@example.com"}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := matcherFor(t, tc.account)
			got := m.Match(tc.event)
			if (len(got) > 0) != tc.want {
				t.Fatalf("Match(%s, %+v) = %v, want match %v", tc.account, tc.event.Actor, got, tc.want)
			}
			if tc.want && got[0].Principal.String() != tc.account {
				t.Errorf("matched account %s, want %s", got[0].Principal, tc.account)
			}
		})
	}
}

func TestMatcherReportsUnwatchableAccounts(t *testing.T) {
	m := matcherFor(t, "group:sre@example.com", "gcp:domain:example.com", "aws:arn:aws:iam::*:root",
		"aws:arn:aws:iam::123456789012:group/admins", "azure:group:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e", aliceARN)
	if got := len(m.Unwatchable()); got != 5 {
		t.Fatalf("unwatchable accounts = %d (%v), want 5", got, m.Unwatchable())
	}
	if m.Accounts() != 6 {
		t.Errorf("Accounts() = %d, want 6", m.Accounts())
	}
	if !m.Watches(model.CloudAWS) || m.Watches(model.CloudGCP) || m.Watches(model.CloudAzure) {
		t.Errorf("Watches: aws %v gcp %v azure %v, want only aws", m.Watches(model.CloudAWS), m.Watches(model.CloudGCP), m.Watches(model.CloudAzure))
	}
}

// An account in two policies is reported for each; an event naming the
// same account through two fields is reported once per policy.
func TestMatcherDeduplicates(t *testing.T) {
	m := &Matcher{byKey: map[string][]Account{}, needles: map[model.Cloud][]needle{}}
	m.Add(Account{Policy: "a", Principal: model.MustPrincipal(roleARN)})
	m.Add(Account{Policy: "b", Principal: model.MustPrincipal(roleARN)})
	ev := awsEvent(Actor{Type: "AssumedRole", ARN: "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/x", IssuerARN: "arn:aws:iam::123456789012:role/BreakGlassAdmin", IssuerType: "Role", IssuerUserName: "BreakGlassAdmin", AccountID: "123456789012"})
	got := m.Match(ev)
	if len(got) != 2 || got[0].Policy != "a" || got[1].Policy != "b" {
		t.Fatalf("Match = %v, want one account per policy, in order", got)
	}
}

func TestLowerASCII(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200; n++ {
		src := make([]byte, r.IntN(40))
		for i := range src {
			src[i] = byte(r.IntN(256))
		}
		dst := make([]byte, len(src))
		lowerASCII(dst, src)
		for i, c := range src {
			want := c
			if 'A' <= c && c <= 'Z' {
				want = c + 32
			}
			if dst[i] != want {
				t.Fatalf("lowerASCII(%q)[%d] = %#x, want %#x", src, i, dst[i], want)
			}
		}
	}
}

// The pre-filter must never say no to a record Match would report:
// generated CloudTrail records with actors near and at the accounts, in any
// case mix.
func TestPrefilterIsSoundForCloudTrail(t *testing.T) {
	m := matcherFor(t, aliceARN, rootARN, roleARN)
	r := rand.New(rand.NewPCG(3, 4))
	names := []string{"breakglass-alice", "breakglass-alice2", "ops", "BreakGlassAdmin", "BreakGlassAdmin2", "alice"}
	accounts := []string{"123456789012", "210987654321"}
	matched := 0
	for n := 0; n < 3000; n++ {
		name := randomCase(r, names[r.IntN(len(names))])
		acct := accounts[r.IntN(len(accounts))]
		var id map[string]any
		switch r.IntN(4) {
		case 0:
			id = map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::" + acct + ":user/" + name, "accountId": acct, "userName": name}
		case 1:
			id = map[string]any{"type": "IAMUser", "accountId": acct, "userName": name}
		case 2:
			id = map[string]any{"type": randomCase(r, "Root"), "accountId": acct}
		default:
			id = map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::" + acct + ":assumed-role/" + name + "/s", "accountId": acct,
				"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "arn": "arn:aws:iam::" + acct + ":role/" + name, "userName": name}}}
		}
		raw, _ := json.Marshal(map[string]any{"eventVersion": "1.09", "userIdentity": id, "eventName": "X", "eventID": "id"})
		ev, err := parseCloudTrail(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Match(ev)) > 0 {
			matched++
			if !prefilterSays(m, model.CloudAWS, raw) {
				t.Fatalf("pre-filter rejects a matching record: %s", raw)
			}
		}
	}
	if matched < 100 {
		t.Fatalf("only %d generated records matched: the property was barely exercised", matched)
	}
	if prefilterSays(m, model.CloudAWS, []byte(`{"userIdentity":{"type":"IAMUser","userName":"ops"}}`)) {
		t.Error("pre-filter passes a record that names no account at all")
	}
}

func randomCase(r *rand.Rand, s string) string {
	if r.IntN(2) == 0 {
		return s
	}
	b := []byte(s)
	for i := range b {
		if r.IntN(2) == 0 {
			b[i] = bytes.ToUpper(b[i : i+1])[0]
		} else {
			b[i] = bytes.ToLower(b[i : i+1])[0]
		}
	}
	return strings.Clone(string(b))
}

// prefilterSays runs the scanner's pre-filter over one record.
func prefilterSays(m *Matcher, cloud model.Cloud, raw []byte) bool {
	return newPrefilter(m.needles[cloud], raw).mayMatch(raw, 0, 0, int64(len(raw)))
}
