// Package breakglass finds uses of break-glass accounts in cloud audit logs
// and runs the incident workflow around them.
//
// Parsers turn the records of each audit log format (CloudTrail, GCP Cloud
// Audit Logs, Azure Activity Log, Entra sign-in logs) into normalised
// ActorEvents; a Matcher built from the policy set's break_glass blocks says
// which account, if any, an event's actor is, with each cloud's identity
// rules; a Scanner streams exported log files of any size, splits them into
// records, and reports every malformed record with its position instead of
// stopping.
//
// In the daemon, a Watcher follows audit sources (FileSource follows a
// directory of exported logs) on the replica holding its lease. Detect, a
// pure function, groups the events of each account into incidents, declared
// or undeclared (critical), and raises alerts; Reminders re-alerts about
// overdue post-incident reviews; the Watcher stores both through the state
// store's outbox and delivers the alerts with package notify. Check reports
// the readiness of detection and BuildReport the patterns in grants and
// incidents that say the access model needs work.
package breakglass
