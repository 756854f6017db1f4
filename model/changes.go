package model

// Reason is a stable code explaining a planned change or finding; it
// surfaces in status, logs and metrics.
type Reason string

// Reason codes of the planner.
const (
	ReasonGranted       Reason = "granted"       // a live grant has no binding yet
	ReasonExpired       Reason = "expired"       // the grant's window has ended
	ReasonRevoked       Reason = "revoked"       // the grant was revoked early
	ReasonUnknownOwner  Reason = "unknown-grant" // a managed binding whose grant is not in the store
	ReasonTampered      Reason = "tampered"      // expiry, scope or member altered out of band
	ReasonNotStarted    Reason = "not-started"   // binding exists before the grant's window
	ReasonStanding      Reason = "standing"      // unconditional unmanaged assignment of a governed role
	ReasonStandingFixed Reason = "standing-removed"
	ReasonInactive      Reason = "inactive"       // the grant is pending, denied or failed
	ReasonNotDesired    Reason = "not-desired"    // the grant is live but its role no longer includes the target
	ReasonWindowChanged Reason = "window-changed" // the cloud-side window lies inside the grant's but differs (a renewal)
)

// Change is one planned mutation of a binding.
type Change struct {
	Reason Reason   `json:"reason"`
	Old    *Binding `json:"old,omitempty"`
	New    *Binding `json:"new,omitempty"`
}

// Finding is something the planner reports without changing it.
type Finding struct {
	Reason  Reason  `json:"reason"`
	Binding Binding `json:"binding"`
	Message string  `json:"message"`
}

// Changes is the planner's output: pure data, applied by the executor.
type Changes struct {
	Create   []Change  `json:"create,omitempty"`
	Delete   []Change  `json:"delete,omitempty"`
	Replace  []Change  `json:"replace,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// Empty reports whether there is nothing to apply or report.
func (c Changes) Empty() bool {
	return len(c.Create) == 0 && len(c.Delete) == 0 && len(c.Replace) == 0 && len(c.Findings) == 0
}
