package reconcile

import (
	"cmp"
	"slices"
	"sync"

	"github.com/elevatehq/elevate/model"
)

// grantCache is the leader's copy of the live grants between full passes:
// a full pass reloads it from the store, the poll before every targeted
// pass applies the grants changed since (GrantFilter.UpdatedSince), and the
// recorder applies the engine's own status changes. An expiry pass then
// costs no read of every live grant. Versions order the updates, so a
// stale read never undoes a newer one.
type grantCache struct {
	mu sync.Mutex
	// live points into the slice the last full pass read (never copied:
	// it is the one long-lived copy of the live grants) or at grants
	// applied since. Entries are replaced, never changed in place.
	live map[string]*model.Grant
	// gone remembers the version at which a grant left the live set, so an
	// older read of it does not bring it back.
	gone map[string]int64
	// sorted is what list returned last: the live grants in the store's
	// order; changed holds the IDs applied since, which list folds in
	// without sorting every grant again. Passes share sorted, so it is
	// replaced, never changed in place.
	sorted  []*model.Grant
	changed map[string]bool
	// loaded reports whether a full read filled the cache (reset) since it
	// was made or dropped: until then it knows only some grants, and a
	// pass planning from it would take every other grant's bindings for
	// unwanted.
	loaded bool
}

func newGrantCache() *grantCache {
	return &grantCache{live: make(map[string]*model.Grant), gone: make(map[string]int64), changed: make(map[string]bool)}
}

// reset replaces the cache with the live grants read from the store. The
// cache keeps pointers into live, which nobody may change afterwards (it
// sorts them into the store's order if they are not).
func (c *grantCache) reset(live []model.Grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.IsSortedFunc(live, compareStoreOrder) {
		slices.SortFunc(live, compareStoreOrder)
	}
	c.live = make(map[string]*model.Grant, len(live))
	c.gone = make(map[string]int64)
	c.changed = make(map[string]bool)
	c.sorted = make([]*model.Grant, len(live))
	for i := range live {
		c.live[live[i].ID] = &live[i]
		c.sorted[i] = &live[i]
	}
	c.loaded = true
}

// drop empties the cache before a full read, so the grants it held can be
// freed while the new ones are read; it is not loaded until reset.
func (c *grantCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = make(map[string]*model.Grant)
	c.gone = make(map[string]int64)
	c.changed = make(map[string]bool)
	c.sorted = nil
	c.loaded = false
}

// isLoaded reports whether the cache holds every live grant (see loaded).
func (c *grantCache) isLoaded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loaded
}

// apply records g as read from the store (or just written); it reports
// whether the cache changed.
func (c *grantCache) apply(g model.Grant) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.gone[g.ID]; ok && v >= g.Version {
		return false
	}
	if cur, ok := c.live[g.ID]; ok && cur.Version >= g.Version {
		return false
	}
	if g.Status.Live() {
		c.live[g.ID] = &g
		delete(c.gone, g.ID)
		c.changed[g.ID] = true
		return true
	}
	_, was := c.live[g.ID]
	delete(c.live, g.ID)
	c.gone[g.ID] = g.Version
	if was {
		c.changed[g.ID] = true
	}
	return was
}

// list returns the cached live grants in the store's order (request time,
// then ID). The slice and the grants are shared: the caller must not
// change them.
func (c *grantCache) list() []*model.Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.changed) == 0 {
		return c.sorted
	}
	// The grants that did not change keep their order; the changed ones
	// are sorted apart and merged in.
	var fresh []*model.Grant
	for id := range c.changed {
		if g := c.live[id]; g != nil {
			fresh = append(fresh, g)
		}
	}
	slices.SortFunc(fresh, comparePtrStoreOrder)
	out := make([]*model.Grant, 0, len(c.live))
	for _, g := range c.sorted {
		if c.changed[g.ID] {
			continue
		}
		for len(fresh) > 0 && comparePtrStoreOrder(fresh[0], g) < 0 {
			out = append(out, fresh[0])
			fresh = fresh[1:]
		}
		out = append(out, g)
	}
	out = append(out, fresh...)
	c.sorted = out
	c.changed = make(map[string]bool)
	return out
}

// compareStoreOrder orders grants as the store lists them.
func compareStoreOrder(a, b model.Grant) int {
	return cmp.Or(a.RequestedAt.Compare(b.RequestedAt), cmp.Compare(a.ID, b.ID))
}

func comparePtrStoreOrder(a, b *model.Grant) int { return compareStoreOrder(*a, *b) }
