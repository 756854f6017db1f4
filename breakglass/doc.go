// Package breakglass finds uses of break-glass accounts in cloud audit logs.
//
// Parsers turn the records of each audit log format (CloudTrail, GCP Cloud
// Audit Logs, Azure Activity Log, Entra sign-in logs) into normalised
// ActorEvents; a Matcher built from the policy set's break_glass blocks says
// which account, if any, an event's actor is, with each cloud's identity
// rules; a Scanner streams exported log files of any size, splits them into
// records, and reports every malformed record with its position instead of
// stopping.
package breakglass
