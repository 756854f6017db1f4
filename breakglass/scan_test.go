package breakglass

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/policies"
)

// fixtureMatcher builds the matcher from testdata/policies, the policy set
// the fixtures are written against.
func fixtureMatcher(t testing.TB) *Matcher {
	t.Helper()
	set, diags := policies.Load("testdata/policies")
	if diags.HasErrors() {
		t.Fatalf("loading fixture policies: %v", diags)
	}
	return NewMatcher(set)
}

// scanned is a Scan result reduced to comparable text.
type scanned struct {
	records, malformed int
	detections         []string
	problems           []string
}

func detectionText(d Detection) string {
	e := d.Event
	return fmt.Sprintf("%s %s %s %s %s %s %s", d.Account.Policy, d.Account.Principal, e.EventID, e.EventName, e.TimeText(), e.SourceIP, e.Outcome)
}

func runScan(t testing.TB, sc *Scanner, name string, data []byte) scanned {
	t.Helper()
	var out scanned
	sc.OnProblem = func(p Problem) { out.problems = append(out.problems, p.String()) }
	res, err := sc.Scan(bytes.NewReader(data), name)
	if err != nil {
		t.Fatalf("scanning %s: %v", name, err)
	}
	out.records, out.malformed = res.Records, res.Malformed
	for _, d := range res.Detections {
		out.detections = append(out.detections, detectionText(d))
	}
	if len(out.problems) != res.Malformed {
		t.Errorf("%s: %d problems reported but Malformed = %d", name, len(out.problems), res.Malformed)
	}
	return out
}

// scanBoth scans with the pre-filter and with every record decoded, and
// fails unless both find exactly the same: the proof that the fast path
// loses nothing.
func scanBoth(t testing.TB, m *Matcher, src Source, name string, data []byte, limit int) scanned {
	t.Helper()
	fast := runScan(t, &Scanner{Source: src, Matcher: m, MaxRecordSize: limit}, name, data)
	full := runScan(t, &Scanner{Source: src, Matcher: m, MaxRecordSize: limit, DecodeAll: true}, name, data)
	if diff := cmp.Diff(full, fast, cmp.AllowUnexported(scanned{})); diff != "" {
		t.Fatalf("%s: the pre-filtered scan differs from decoding every record (-all +fast):\n%s", name, diff)
	}
	return fast
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const (
	alice = "idp-outage aws:arn:aws:iam::123456789012:user/breakglass-alice "
	root  = "last-resort aws:arn:aws:iam::123456789012:root "
	role  = "last-resort aws:arn:aws:iam::123456789012:role/BreakGlassAdmin "
	gcpBG = "idp-outage gcp:user:breakglass-1@example.com "
	azBG  = "idp-outage azure:user:breakglass1@contoso.onmicrosoft.com "
	azObj = "last-resort azure:object:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e "
)

// The CloudTrail fixture holds the traps: breakglass-alice2 signing in,
// ops-bob creating a key FOR breakglass-alice and trying to assume
// BreakGlassAdmin (the account is in requestParameters, responseElements and
// resources, not the actor), a session of BreakGlassAdmin2, a mistyped
// user name, the root user of another account.
var cloudTrailWant = []string{
	alice + "e1a0c7d2-0001-4b3e-9c51-6f1d2a3b4c01 ConsoleLogin 2026-11-29T03:12:00Z 203.0.113.7 success",
	alice + "e1a0c7d2-0002-4b3e-9c51-6f1d2a3b4c02 ConsoleLogin 2026-11-29T03:10:41Z 203.0.113.7 failure",
	root + "e1a0c7d2-0005-4b3e-9c51-6f1d2a3b4c05 ConsoleLogin 2026-11-29T04:01:30Z 192.0.2.44 success",
	role + "e1a0c7d2-0006-4b3e-9c51-6f1d2a3b4c06 PutBucketPolicy 2026-11-29T04:05:55Z 203.0.113.9 success",
	alice + "e1a0c7d2-0011-4b3e-9c51-6f1d2a3b4c11 AttachUserPolicy 2026-11-29T05:02:17Z 203.0.113.7 failure",
	alice + "e1a0c7d2-0012-4b3e-9c51-6f1d2a3b4c12 StopInstances 2026-11-29T05:03:00Z 203.0.113.7 success",
	root + "e1a0c7d2-0014-4b3e-9c51-6f1d2a3b4c14 ConsoleLogin 2026-11-29T05:12:00Z 192.0.2.46 failure",
}

func TestScanFixtures(t *testing.T) {
	m := fixtureMatcher(t)
	trail := readFixture(t, "cloudtrail/trail.json")
	tests := []struct {
		name    string
		source  Source
		data    []byte
		records int
		want    []string
	}{
		{"cloudtrail/trail.json", SourceCloudTrail, trail, 14, cloudTrailWant},
		{"cloudtrail/trail.json.gz", SourceCloudTrail, gzipped(t, trail), 14, cloudTrailWant},
		{"cloudtrail/records.jsonl", SourceCloudTrail, readFixture(t, "cloudtrail/records.jsonl"), 14, cloudTrailWant},
		{"cloudtrail/lookup-events.json", SourceCloudTrail, readFixture(t, "cloudtrail/lookup-events.json"), 4, []string{cloudTrailWant[0], cloudTrailWant[3]}},
		{"cloudtrail/eventbridge.jsonl", SourceCloudTrail, readFixture(t, "cloudtrail/eventbridge.jsonl"), 4, cloudTrailWant[:3]},
		{"cloudtrail/records.jsonl as a JSON array", SourceCloudTrail, jsonArray(readFixture(t, "cloudtrail/records.jsonl")), 14, cloudTrailWant},
		// GCP: an admin granting breakglass-1 a role (request and
		// serviceData name it), breakglass-10, another impersonator, an
		// application log line mentioning the account.
		{"gcp/entries.json", SourceGCPAudit, readFixture(t, "gcp/entries.json"), 8, []string{
			gcpBG + "-a1b2c3d4e5f6 SetIamPolicy 2026-11-29T03:12:00Z 203.0.113.7 success",
			gcpBG + "-a1b2c3d4e5f8 google.iam.admin.v1.CreateServiceAccountKey 2026-11-29T03:20:00Z 203.0.113.7 success",
			gcpBG + "-a1b2c3d4e5fa SetIamPolicy 2026-11-29T03:25:44Z 203.0.113.8 failure",
			gcpBG + "-a1b2c3d4e5fb v1.compute.instances.delete 2026-11-29T03:30:00Z 203.0.113.7 success",
		}},
		{"gcp/sink.jsonl", SourceGCPAudit, readFixture(t, "gcp/sink.jsonl"), 8, []string{
			gcpBG + "-a1b2c3d4e5f6 SetIamPolicy 2026-11-29T03:12:00Z 203.0.113.7 success",
			gcpBG + "-a1b2c3d4e5f8 google.iam.admin.v1.CreateServiceAccountKey 2026-11-29T03:20:00Z 203.0.113.7 success",
			gcpBG + "-a1b2c3d4e5fa SetIamPolicy 2026-11-29T03:25:44Z 203.0.113.8 failure",
			gcpBG + "-a1b2c3d4e5fb v1.compute.instances.delete 2026-11-29T03:30:00Z 203.0.113.7 success",
		}},
		// Azure Activity Log: an admin assigning a role to breakglass1 (its
		// UPN and object ID in the request body), breakglass10.
		{"azure/activity.json", SourceAzureActivity, readFixture(t, "azure/activity.json"), 5, []string{
			azBG + "8a7b6c5d-1111-4e2f-9a0b-1c2d3e4f5a01 Microsoft.Authorization/roleAssignments/write 2026-11-29T03:12:00Z 203.0.113.7 success",
			azBG + "8a7b6c5d-1111-4e2f-9a0b-1c2d3e4f5a02 Microsoft.Compute/virtualMachines/delete 2026-11-29T03:13:10Z 203.0.113.7 failure",
			azObj + "8a7b6c5d-1111-4e2f-9a0b-1c2d3e4f5a03 Microsoft.KeyVault/vaults/write 2026-11-29T03:14:00Z 203.0.113.7 success",
		}},
		{"azure/activity-eventhub.json", SourceAzureActivity, readFixture(t, "azure/activity-eventhub.json"), 3, []string{
			azBG + "c0ffee00-0000-4000-8000-000000000001 MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE 2026-11-29T03:12:00Z 203.0.113.7 success",
			azBG + "c0ffee00-0000-4000-8000-000000000003 MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/DELETE 2026-11-29T03:41:00Z 203.0.113.7 failure",
		}},
		// Entra sign-ins: a failed password, another user, upper-case UPN,
		// breakglass1x.
		{"azure/signins.json", SourceAzureSignIn, readFixture(t, "azure/signins.json"), 5, []string{
			azBG + "66ea54eb-6301-4ee5-be62-ff5a759b0001 Sign-in to Azure Portal 2026-11-29T03:11:30Z 203.0.113.7 success",
			azBG + "66ea54eb-6301-4ee5-be62-ff5a759b0002 Sign-in to Azure Portal 2026-11-29T03:10:02Z 203.0.113.7 failure",
			azBG + "66ea54eb-6301-4ee5-be62-ff5a759b0004 Sign-in to Microsoft Graph Command Line Tools 2026-11-29T03:17:45Z 203.0.113.7 success",
		}},
		{"azure/signins-diagnostic.jsonl", SourceAzureSignIn, readFixture(t, "azure/signins-diagnostic.jsonl"), 3, []string{
			azBG + "66ea54eb-6301-4ee5-be62-ff5a759b0001 Sign-in to Azure Portal 2026-11-29T03:11:30Z 203.0.113.7 success",
			azBG + "66ea54eb-6301-4ee5-be62-ff5a759b0002 Sign-in to Azure Portal 2026-11-29T03:10:02Z 203.0.113.7 failure",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := scanBoth(t, m, tc.source, tc.name, tc.data, 0)
			if got.records != tc.records || got.malformed != 0 {
				t.Errorf("records %d malformed %d (%v), want %d and 0", got.records, got.malformed, got.problems, tc.records)
			}
			if diff := cmp.Diff(tc.want, got.detections); diff != "" {
				t.Errorf("detections (-want +got):\n%s", diff)
			}
		})
	}
}

// jsonArray turns JSON lines into a pretty-ish JSON array.
func jsonArray(lines []byte) []byte {
	recs := bytes.Split(bytes.TrimSpace(lines), []byte("\n"))
	return append(append([]byte("[\n  "), bytes.Join(recs, []byte(",\n  "))...), "\n]\n"...)
}

func TestScanPositionsOfDetections(t *testing.T) {
	m := fixtureMatcher(t)
	sc := &Scanner{Source: SourceCloudTrail, Matcher: m}
	res, err := sc.Scan(bytes.NewReader(readFixture(t, "cloudtrail/records.jsonl")), "records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Detections {
		got = append(got, d.Event.Position.String())
	}
	want := []string{"records.jsonl: record 1 (line 1, byte 0)"}
	if len(got) != len(cloudTrailWant) || got[0] != want[0] {
		t.Fatalf("positions %v, want %d starting %v", got, len(cloudTrailWant), want)
	}
	if !strings.HasPrefix(got[6], "records.jsonl: record 14 (line 14, byte ") {
		t.Errorf("last detection at %q, want record 14 on line 14", got[6])
	}
}

// Malformed JSON lines: each bad line is counted and reported with its
// line, and the records after it are still scanned.
func TestScanMalformedJSONLines(t *testing.T) {
	m := fixtureMatcher(t)
	good := bytes.Split(bytes.TrimSpace(readFixture(t, "cloudtrail/records.jsonl")), []byte("\n"))
	lines := [][]byte{
		good[0], // alice signs in (line 1)
		[]byte(`this is not json`),
		good[1][:200], // truncated line: ends outside and inside strings
		good[4],       // root signs in (line 4)
		[]byte(`{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","userName":"breakglass-alice"},"eventTime":tru}`),
		[]byte(`42`),
		[]byte(``),
		[]byte("{\"eventVersion\":\"1.09\",\"eventName\":\"a\x01b\"}"),
		good[5],                         // role session (line 9)
		append(good[10], " x"...),       // trailing garbage after a record
		good[11],                        // alice, case and path (line 11)
		[]byte(`{"unterminated": "str`), // the file ends inside a record
	}
	data := bytes.Join(lines, []byte("\n"))
	got := scanBoth(t, m, SourceCloudTrail, "bad.jsonl", data, 0)
	wantDetections := []string{cloudTrailWant[0], cloudTrailWant[2], cloudTrailWant[3], cloudTrailWant[4], cloudTrailWant[5]}
	if diff := cmp.Diff(wantDetections, got.detections); diff != "" {
		t.Errorf("detections (-want +got):\n%s", diff)
	}
	wantProblems := []string{
		"bad.jsonl: record 2 (line 2, byte 1054): malformed JSON at byte 1055: invalid character 'h' in literal true",
		"bad.jsonl: record 3 (line 3, byte 1071): malformed JSON at byte 1271: invalid control character 0x0a in a string",
		"bad.jsonl: record 5 (line 5, byte 2282): malformed JSON at byte 2384: invalid character '}' in literal true",
		"bad.jsonl: record 6 (line 6, byte 2386): the record is a JSON number, not an object",
		"bad.jsonl: record 7 (line 8, byte 2390): malformed JSON at byte 2427: invalid control character 0x01 in a string",
		"bad.jsonl: record 10 (line 10, byte 5063): malformed JSON at byte 5063: invalid character 'x' looking for the beginning of a value",
		"bad.jsonl: record 12 (line 12, byte 6343): truncated: the input ends inside this record",
	}
	if diff := cmp.Diff(wantProblems, got.problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if got.records != 12 || got.malformed != 7 {
		t.Errorf("records %d malformed %d, want 12 and 7", got.records, got.malformed)
	}
}

// A malformed record inside a trail file's records array is skipped; the
// records after it are scanned.
func TestScanMalformedRecordInTrail(t *testing.T) {
	m := fixtureMatcher(t)
	trail := readFixture(t, "cloudtrail/trail.json")
	// Break record 3 (breakglass-alice2) three ways.
	start := bytes.Index(trail, []byte(`{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEBREAKGLASS2"`))
	if start < 0 {
		t.Fatal("fixture changed: record 3 not found")
	}
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"bad literal", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"readOnly":false`), []byte(`"readOnly":flase`), 1)
		}},
		{"lost quote", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"eventName":"ConsoleLogin"`), []byte(`"eventName":ConsoleLogin"`), 1)
		}},
		{"extra brace", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"MFAUsed":"Yes"}`), []byte(`"MFAUsed":"Yes"}}`), 1)
		}},
		{"binary junk", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"eventSource":"signin.amazonaws.com"`), []byte("\"eventSource\":\x00\xff\"\x01{[\"junk"), 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := append(bytes.Clone(trail[:start]), tc.mutate(bytes.Clone(trail[start:]))...)
			got := scanBoth(t, m, SourceCloudTrail, "trail.json", data, 0)
			// An extra '}' ends record 3 early as a valid object: the
			// damage shows at what follows it.
			if got.malformed < 1 || !(strings.HasPrefix(got.problems[0], "trail.json: record 3 (line 1, byte ") ||
				tc.name == "extra brace" && strings.HasPrefix(got.problems[0], "trail.json: record 4 (line 1, byte ")) {
				t.Fatalf("problems %v, want record 3 reported first", got.problems)
			}
			if diff := cmp.Diff(cloudTrailWant, got.detections); diff != "" {
				t.Errorf("detections after the damage lost (-want +got):\n%s", diff)
			}
		})
	}
}

// Cut anywhere, a file yields no error, reports the truncation, and keeps
// every detection of the records before the cut.
func TestScanTruncatedFiles(t *testing.T) {
	m := fixtureMatcher(t)
	for _, name := range []string{"cloudtrail/trail.json", "cloudtrail/records.jsonl", "cloudtrail/lookup-events.json"} {
		data := readFixture(t, name)
		full := scanBoth(t, m, SourceCloudTrail, name, data, 0)
		for cut := 1; cut < len(bytes.TrimSpace(data)); cut += 97 {
			got := scanBoth(t, m, SourceCloudTrail, name, data[:cut], 0)
			if got.malformed == 0 {
				t.Fatalf("%s cut at %d: no problem reported", name, cut)
			}
			if len(got.detections) > len(full.detections) || !slicesPrefix(full.detections, got.detections) {
				t.Fatalf("%s cut at %d: detections %v are not a prefix of %v", name, cut, got.detections, full.detections)
			}
		}
	}
}

func slicesPrefix(full, part []string) bool {
	for i := range part {
		if full[i] != part[i] {
			return false
		}
	}
	return true
}

func TestScanTruncatedGzip(t *testing.T) {
	m := fixtureMatcher(t)
	data := readFixture(t, "cloudtrail/records.jsonl")
	gz := gzipped(t, bytes.Repeat(data, 20))
	got := scanBoth(t, m, SourceCloudTrail, "trail.json.gz", gz[:len(gz)*2/3], 0)
	if len(got.detections) == 0 || got.records == 0 {
		t.Errorf("nothing kept from before the cut: %+v", got)
	}
	last := got.problems[len(got.problems)-1]
	if !strings.Contains(last, "gzip data is truncated") || !strings.Contains(last, "of the decompressed data") {
		t.Errorf("last problem %q does not report the truncated gzip data", last)
	}
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)/2] ^= 0xff
	got = scanBoth(t, m, SourceCloudTrail, "corrupt.json.gz", corrupt, 0)
	if got.malformed == 0 {
		t.Error("corrupt gzip data not reported")
	}
}

// hugeRecord is a CloudTrail record of about size bytes: the actor is
// actor, the bulk is a request parameter.
func hugeRecord(actor string, size int) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/%s","accountId":"123456789012","userName":"%s"},"eventTime":"2026-11-29T06:00:00Z","eventSource":"ssm.amazonaws.com","eventName":"PutParameter","sourceIPAddress":"203.0.113.7","requestParameters":{"name":"/big","value":"%s","tags":[{"key":"owner","value":"breakglass-alice"}]},"eventID":"huge-%s"}`,
		actor, actor, strings.Repeat("0123456789abcdef", size/16), actor)
}

func TestScanHugeRecords(t *testing.T) {
	m := fixtureMatcher(t)
	big := hugeRecord("breakglass-alice", 3<<20)
	other := hugeRecord("ops-bob", 2<<20)
	small := bytes.Split(readFixture(t, "cloudtrail/records.jsonl"), []byte("\n"))[4] // root signs in
	lines := bytes.Join([][]byte{big, other, small}, []byte("\n"))
	trail := append(append([]byte(`{"Records":[`), bytes.Join([][]byte{big, other, small}, []byte(","))...), "]}"...)

	for _, in := range []struct {
		name string
		data []byte
	}{{"lines.jsonl", lines}, {"trail.json", trail}} {
		got := scanBoth(t, m, SourceCloudTrail, in.name, in.data, 0)
		want := []string{alice + "huge-breakglass-alice PutParameter 2026-11-29T06:00:00Z 203.0.113.7 success", cloudTrailWant[2]}
		if diff := cmp.Diff(want, got.detections); diff != "" || got.records != 3 || got.malformed != 0 {
			t.Errorf("%s under the default limit: records %d malformed %d, detections (-want +got):\n%s", in.name, got.records, got.malformed, diff)
		}
		// With a 1 MiB limit the two big records are reported and stepped
		// over; the record after them is still found.
		got = scanBoth(t, m, SourceCloudTrail, in.name, in.data, 1<<20)
		if diff := cmp.Diff([]string{cloudTrailWant[2]}, got.detections); diff != "" || got.records != 3 || got.malformed != 2 {
			t.Errorf("%s over a 1 MiB limit: records %d malformed %d (%v), detections (-want +got):\n%s", in.name, got.records, got.malformed, got.problems, diff)
		}
		if len(got.problems) > 0 && !strings.Contains(got.problems[0], "larger than the 1 MiB limit") {
			t.Errorf("%s: problem %q does not name the limit", in.name, got.problems[0])
		}
	}
}

func TestScanOddInputs(t *testing.T) {
	m := fixtureMatcher(t)
	small := bytes.Split(readFixture(t, "cloudtrail/records.jsonl"), []byte("\n"))[4]
	for _, tc := range []struct {
		name               string
		data               []byte
		records, malformed int
		detections         int
		problemContains    string
	}{
		{"empty", nil, 0, 0, 0, ""},
		{"whitespace", []byte(" \n\t\n"), 0, 0, 0, ""},
		{"empty array", []byte("[]"), 0, 0, 0, ""},
		{"empty trail", []byte(`{"Records":[]}`), 0, 0, 0, ""},
		{"byte order mark", append([]byte("\xef\xbb\xbf"), small...), 1, 0, 1, ""},
		{"UTF-16", []byte("\xff\xfe[\x00]\x00"), 0, 1, 0, "UTF-16"},
		{"non-objects in an array", append(append([]byte(`[1,"x",null,`), small...), ']'), 4, 3, 1, "not an object"},
		{"trailing comma", append(append([]byte(`[`), small...), ",]"...), 1, 1, 1, "','"},
		{"missing comma", append(append(append(append([]byte(`[`), small...), ' '), small...), ']'), 2, 1, 2, "expected ',' or ']'"},
		{"array never closed", append([]byte(`[`), small...), 1, 1, 1, "truncated"},
		{"Graph page with nextLink", append(append([]byte(`{"@odata.context":"x","value":[`), small...), `],"@odata.nextLink":"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x"}`...), 1, 0, 1, ""},
		{"two trail files concatenated", bytes.Repeat(append(append([]byte(`{"Records":[`), small...), "]}\n"...), 2), 2, 0, 2, ""},
		{"gzip members concatenated (cat *.json.gz)", append(gzipped(t, append(append([]byte(`{"Records":[`), small...), "]}"...)), gzipped(t, append(small, '\n'))...), 2, 0, 2, ""},
		{"garbage after the records array", append(append([]byte(`{"Records":[`), small...), "] garbage"...), 1, 1, 1, "unexpected data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scanBoth(t, m, SourceCloudTrail, "f", tc.data, 0)
			if got.records != tc.records || got.malformed != tc.malformed || len(got.detections) != tc.detections {
				t.Errorf("records %d malformed %d detections %d (%v), want %d %d %d", got.records, got.malformed, len(got.detections), got.problems, tc.records, tc.malformed, tc.detections)
			}
			if tc.problemContains != "" && (len(got.problems) == 0 || !strings.Contains(strings.Join(got.problems, "\n"), tc.problemContains)) {
				t.Errorf("problems %v do not mention %q", got.problems, tc.problemContains)
			}
		})
	}
}

// failingReader returns its data, then an I/O error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestScanReturnsIOErrors(t *testing.T) {
	m := fixtureMatcher(t)
	ioErr := errors.New("input/output error")
	data := readFixture(t, "cloudtrail/records.jsonl")
	sc := &Scanner{Source: SourceCloudTrail, Matcher: m}
	res, err := sc.Scan(&failingReader{data: data[:len(data)/2], err: ioErr}, "disk.jsonl")
	if !errors.Is(err, ioErr) || !strings.Contains(err.Error(), "disk.jsonl") {
		t.Fatalf("err = %v, want the I/O error naming the file", err)
	}
	if res.Records == 0 || len(res.Detections) == 0 {
		t.Errorf("result before the error lost: %+v", res)
	}
}

func TestScanRejectsUnknownSource(t *testing.T) {
	_, err := (&Scanner{Source: "syslog", Matcher: fixtureMatcher(t)}).Scan(strings.NewReader("{}"), "x")
	if err == nil {
		t.Fatal("unknown source accepted")
	}
	if _, err := ParseSource("cloudtrail"); err != nil {
		t.Error(err)
	}
	if _, err := ParseSource("CloudTrail"); err == nil || !strings.Contains(err.Error(), "azure-signin") {
		t.Errorf("ParseSource error %v does not list the sources", err)
	}
}

// A reader that hands out one byte at a time exercises every buffer
// boundary: the result must not change.
type byteReader struct{ r io.Reader }

func (b byteReader) Read(p []byte) (int, error) { return b.r.Read(p[:min(len(p), 1)]) }

func TestScanIsIndependentOfReadSizes(t *testing.T) {
	m := fixtureMatcher(t)
	for _, name := range []string{"cloudtrail/trail.json", "cloudtrail/lookup-events.json", "gcp/entries.json", "azure/signins.json"} {
		data := readFixture(t, name)
		src := Source(map[string]Source{"cloudtrail": SourceCloudTrail, "gcp": SourceGCPAudit, "azure": SourceAzureSignIn}[strings.Split(name, "/")[0]])
		whole := runScan(t, &Scanner{Source: src, Matcher: m}, name, data)
		sc := &Scanner{Source: src, Matcher: m}
		res, err := sc.Scan(byteReader{bytes.NewReader(data)}, name)
		if err != nil || res.Records != whole.records || len(res.Detections) != len(whole.detections) {
			t.Errorf("%s read byte by byte: records %d detections %d err %v, want %d %d", name, res.Records, len(res.Detections), err, whole.records, len(whole.detections))
		}
	}
}

// randomReader hands out reads of random sizes, so that records, escapes
// and the scanner's buffer boundaries fall anywhere relative to each other.
type randomReader struct {
	r   io.Reader
	rnd *rand.Rand
}

func (x randomReader) Read(p []byte) (int, error) {
	return x.r.Read(p[:min(len(p), 1+x.rnd.IntN(300))])
}

// The checker is told where the input's backslashes are and skips the
// escape check in strings before them. Wherever escapes fall, in JSON lines
// and in a trail file read in pieces of any size: a use spelled with an
// escape is still decoded and found, and a broken escape or a raw control
// character still makes its record malformed.
func TestScanFindsEscapesWhereverTheyFall(t *testing.T) {
	m := matcherFor(t, aliceARN)
	r := rand.New(rand.NewPCG(21, 22))
	for round := range 20 {
		var records []string
		uses, bad := 0, 0
		for k := range 200 {
			id, at := fmt.Sprintf("id-%d-%d", round, k), t0.Add(time.Duration(k)*time.Second)
			rec := ctLogin(id, "ops-bob", at, true)
			switch r.IntN(8) {
			case 0: // only the decoded name is the account's
				rec = ctLogin(id, `breakglass\u002dalice`, at, true)
				uses++
			case 1:
				rec = ctLogin(id, "breakglass-alice", at, false)
				uses++
			case 2:
				rec = strings.Replace(rec, `"Yes"`, `"Y\"e\\s\/"`, 1)
			case 3:
				rec = strings.Replace(rec, `"Yes"`, `"Y\x"`, 1)
				bad++
			case 4:
				rec = strings.Replace(rec, `"Yes"`, "\"Y\x01s\"", 1)
				bad++
			}
			records = append(records, rec)
		}
		for _, data := range []string{strings.Join(records, ""), trailFile(records...)} {
			var problems int
			sc := &Scanner{Source: SourceCloudTrail, Matcher: m, OnProblem: func(Problem) { problems++ }}
			res, err := sc.Scan(randomReader{strings.NewReader(data), r}, "f")
			if err != nil || res.Records != len(records) || res.Malformed != bad || problems != bad || len(res.Detections) != uses {
				t.Fatalf("round %d: records %d malformed %d (reported %d) detections %d err %v, want %d records, %d malformed, %d uses",
					round, res.Records, res.Malformed, problems, len(res.Detections), err, len(records), bad, uses)
			}
		}
	}
}
