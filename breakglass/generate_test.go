package breakglass

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"
)

// trailGenerator writes realistic CloudTrail records: a mix of the API calls,
// console sign-ins and role sessions a busy account produces, with a given
// share of break-glass use and a larger share of near misses (an account's
// name in request parameters, longer user and role names) that the
// pre-filter lets through and the matcher must reject.
type trailGenerator struct {
	r        *rand.Rand
	uses     int // records whose actor is a watched account
	records  int
	useEvery int // one break-glass use per useEvery records
}

const genAccount = "123456789012"

var (
	genUsers = func() []string {
		var out []string
		for _, first := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe"} {
			for _, team := range []string{"ops", "dev", "data", "sec", "ml"} {
				out = append(out, first+"."+team)
			}
		}
		return out
	}()
	genRoles   = []string{"AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6789", "AWSReservedSSO_ReadOnly_9f8e7d6c5b4a3210", "eks-node-group-prod", "lambda-billing-export", "github-actions-deploy", "OrganizationAccountAccessRole", "datadog-integration", "terraform-apply"}
	genAgents  = []string{"aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard", "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.26.8 md/GOOS#linux md/GOARCH#amd64 api/s3#1.58.2", "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.10.219-208.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.144", "Terraform/1.9.3 (+https://www.terraform.io) terraform-provider-aws/5.60.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36", "console.amazonaws.com", "elasticloadbalancing.amazonaws.com"}
	genRegions = []string{"us-east-1", "us-east-2", "eu-west-1", "eu-central-1", "ap-southeast-2"}
)

func (g *trailGenerator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *trailGenerator) uuid() string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", g.r.Uint32(), g.r.IntN(1<<16), g.r.IntN(1<<12), 0x8000|g.r.IntN(1<<14), g.r.Uint64()&(1<<48-1))
}

func (g *trailGenerator) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 10+g.r.IntN(200), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *trailGenerator) userIdentity(name string) map[string]any {
	return map[string]any{"type": "IAMUser", "principalId": fmt.Sprintf("AIDA%016X", g.r.Uint64()), "arn": "arn:aws:iam::" + genAccount + ":user/" + name, "accountId": genAccount, "accessKeyId": fmt.Sprintf("AKIA%016X", g.r.Uint64()), "userName": name}
}

func (g *trailGenerator) roleIdentity(role, session string) map[string]any {
	pid := fmt.Sprintf("AROA%016X", g.r.Uint64())
	return map[string]any{"type": "AssumedRole", "principalId": pid + ":" + session, "arn": "arn:aws:sts::" + genAccount + ":assumed-role/" + role + "/" + session, "accountId": genAccount, "accessKeyId": fmt.Sprintf("ASIA%016X", g.r.Uint64()),
		"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "principalId": pid, "arn": "arn:aws:iam::" + genAccount + ":role/" + role, "accountId": genAccount, "userName": role}, "webIdFederationData": map[string]any{}, "attributes": map[string]any{"creationDate": "2026-11-29T02:00:00Z", "mfaAuthenticated": "false"}}}
}

// record returns the next record and whether its actor is a watched account.
func (g *trailGenerator) record(t time.Time) (map[string]any, bool) {
	g.records++
	rec := map[string]any{"eventVersion": "1.09", "eventTime": t.Format(time.RFC3339), "awsRegion": g.pick(genRegions), "sourceIPAddress": g.ip(), "userAgent": g.pick(genAgents),
		"requestID": g.uuid(), "eventID": g.uuid(), "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": genAccount, "eventCategory": "Management",
		"tlsDetails": map[string]any{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "s3.amazonaws.com"}}
	if g.r.IntN(g.useEvery) == 0 {
		g.uses++
		switch g.r.IntN(3) {
		case 0: // the break-glass user signs in, or fails to
			rec["userIdentity"] = g.userIdentity("breakglass-alice")
			rec["eventSource"], rec["eventName"], rec["eventType"] = "signin.amazonaws.com", "ConsoleLogin", "AwsConsoleSignIn"
			if g.r.IntN(2) == 0 {
				rec["responseElements"] = map[string]any{"ConsoleLogin": "Success"}
			} else {
				rec["responseElements"] = map[string]any{"ConsoleLogin": "Failure"}
				rec["errorMessage"] = "Failed authentication"
			}
			rec["additionalEventData"] = map[string]any{"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "Yes"}
		case 1: // the root user
			rec["userIdentity"] = map[string]any{"type": "Root", "principalId": genAccount, "arn": "arn:aws:iam::" + genAccount + ":root", "accountId": genAccount, "accessKeyId": ""}
			rec["eventSource"], rec["eventName"] = "iam.amazonaws.com", "CreateAccessKey"
			rec["requestParameters"] = map[string]any{}
		default: // a session of the break-glass role
			rec["userIdentity"] = g.roleIdentity("BreakGlassAdmin", "incident-"+fmt.Sprint(g.r.IntN(9999)))
			rec["eventSource"], rec["eventName"] = "s3.amazonaws.com", "PutBucketPolicy"
			rec["requestParameters"] = map[string]any{"bucketName": "acme-audit-logs", "Host": "acme-audit-logs.s3.amazonaws.com"}
		}
		return rec, true
	}
	// Near misses, about five times as often as uses.
	if g.r.IntN(g.useEvery/5+1) == 0 {
		switch g.r.IntN(3) {
		case 0:
			rec["userIdentity"] = g.userIdentity(g.pick(genUsers))
			rec["eventSource"], rec["eventName"] = "iam.amazonaws.com", "ListAccessKeys"
			rec["requestParameters"] = map[string]any{"userName": "breakglass-alice"}
		case 1:
			rec["userIdentity"] = g.userIdentity("breakglass-alice2")
			rec["eventSource"], rec["eventName"] = "sts.amazonaws.com", "GetCallerIdentity"
		default:
			rec["userIdentity"] = g.roleIdentity("BreakGlassAdmin2", "ci")
			rec["eventSource"], rec["eventName"] = "ec2.amazonaws.com", "DescribeInstances"
			rec["requestParameters"] = map[string]any{"instancesSet": map[string]any{}, "filterSet": map[string]any{}}
		}
		return rec, false
	}
	switch g.r.IntN(6) {
	case 0:
		rec["userIdentity"] = g.roleIdentity(g.pick(genRoles), g.pick(genUsers))
		rec["eventSource"], rec["eventName"] = "s3.amazonaws.com", "GetObject"
		rec["requestParameters"] = map[string]any{"bucketName": "acme-data-" + g.pick(genRegions), "key": fmt.Sprintf("exports/2026/11/29/part-%05d.parquet", g.r.IntN(99999)), "Host": "acme-data.s3.amazonaws.com"}
		rec["additionalEventData"] = map[string]any{"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader", "x-amz-id-2": fmt.Sprintf("%x", g.r.Uint64()), "bytesTransferredOut": g.r.IntN(1 << 24)}
		rec["resources"] = []any{map[string]any{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::acme-data/exports/part"}, map[string]any{"accountId": genAccount, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::acme-data"}}
	case 1:
		rec["userIdentity"] = g.roleIdentity("eks-node-group-prod", fmt.Sprintf("i-%017x", g.r.Uint64()))
		rec["eventSource"], rec["eventName"] = "ec2.amazonaws.com", "DescribeInstances"
		rec["requestParameters"] = map[string]any{"instancesSet": map[string]any{"items": []any{map[string]any{"instanceId": fmt.Sprintf("i-%017x", g.r.Uint64())}}}, "filterSet": map[string]any{}}
	case 2:
		rec["userIdentity"] = g.userIdentity(g.pick(genUsers))
		rec["eventSource"], rec["eventName"], rec["readOnly"] = "iam.amazonaws.com", "AttachRolePolicy", false
		rec["requestParameters"] = map[string]any{"roleName": g.pick(genRoles), "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
		if g.r.IntN(4) == 0 {
			rec["errorCode"], rec["errorMessage"] = "AccessDenied", "User is not authorized to perform: iam:AttachRolePolicy"
		}
	case 3:
		rec["userIdentity"] = g.roleIdentity("lambda-billing-export", "billing-export")
		rec["eventSource"], rec["eventName"] = "kms.amazonaws.com", "Decrypt"
		rec["requestParameters"] = map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": map[string]any{"aws:lambda:FunctionArn": "arn:aws:lambda:eu-west-1:" + genAccount + ":function:billing-export"}}
		rec["resources"] = []any{map[string]any{"accountId": genAccount, "type": "AWS::KMS::Key", "ARN": "arn:aws:kms:eu-west-1:" + genAccount + ":key/" + g.uuid()}}
	case 4:
		user := g.pick(genUsers)
		rec["userIdentity"] = g.userIdentity(user)
		rec["eventSource"], rec["eventName"], rec["eventType"] = "signin.amazonaws.com", "ConsoleLogin", "AwsConsoleSignIn"
		rec["responseElements"] = map[string]any{"ConsoleLogin": "Success"}
		rec["additionalEventData"] = map[string]any{"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "Yes"}
	default:
		rec["userIdentity"] = g.roleIdentity("github-actions-deploy", "GitHubActions")
		rec["eventSource"], rec["eventName"], rec["readOnly"] = "lambda.amazonaws.com", "UpdateFunctionCode20150331v2", false
		rec["requestParameters"] = map[string]any{"functionName": "billing-export", "publish": true, "s3Bucket": "acme-artifacts", "s3Key": fmt.Sprintf("billing-export/%x.zip", g.r.Uint64())}
		rec["responseElements"] = map[string]any{"functionName": "billing-export", "functionArn": "arn:aws:lambda:eu-west-1:" + genAccount + ":function:billing-export", "runtime": "provided.al2023", "codeSize": g.r.IntN(1 << 24), "version": "$LATEST", "state": "Active", "lastUpdateStatus": "InProgress"}
	}
	return rec, false
}

// writeTrail writes about size bytes of records as one trail file
// ({"Records":[…]}, one record per line inside the array) or as JSON lines,
// one break-glass use per useEvery records on average. It returns how many
// records and uses it wrote.
func writeTrail(w io.Writer, size int64, seed uint64, jsonLines bool, useEvery int) (records, uses int, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	g := &trailGenerator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), useEvery: useEvery}
	if !jsonLines {
		bw.WriteString(`{"Records":[` + "\n")
	}
	t := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	var written int64
	for first := true; written < size; first = false {
		rec, _ := g.record(t)
		t = t.Add(time.Duration(g.r.IntN(500)) * time.Millisecond)
		b, err := json.Marshal(rec)
		if err != nil {
			return 0, 0, err
		}
		if !jsonLines && !first {
			bw.WriteString(",\n")
		}
		bw.Write(b)
		if jsonLines {
			bw.WriteByte('\n')
		}
		written += int64(len(b)) + 2
	}
	if !jsonLines {
		bw.WriteString("\n]}\n")
	}
	return g.records, g.uses, bw.Flush()
}

func writeTrailFile(path string, size int64, seed uint64, jsonLines bool, useEvery int) (records, uses int, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	records, uses, err = writeTrail(f, size, seed, jsonLines, useEvery)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return records, uses, err
}
