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
	// sorted is what list returns while no grant changed since it was
	// made (nil otherwise): the live grants in the store's order, which
	// live then points into. Targeted passes then share one copy of the
	// live grants instead of copying and sorting them all every time.
	sorted []model.Grant
	// loaded reports whether a full read filled the cache (reset) since it
	// was made or dropped: until then it knows only some grants, and a
	// pass planning from it would take every other grant's bindings for
	// unwanted.
	loaded bool
}

func newGrantCache() *grantCache {
	return &grantCache{live: make(map[string]*model.Grant), gone: make(map[string]int64)}
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
	for i := range live {
		c.live[live[i].ID] = &live[i]
	}
	c.sorted = live
	c.loaded = true
}

// drop empties the cache before a full read, so the grants it held can be
// freed while the new ones are read; it is not loaded until reset.
func (c *grantCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = make(map[string]*model.Grant)
	c.gone = make(map[string]int64)
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
		c.sorted = nil
		return true
	}
	_, was := c.live[g.ID]
	delete(c.live, g.ID)
	c.gone[g.ID] = g.Version
	if was {
		c.sorted = nil
	}
	return was
}

// list returns the cached live grants in the store's order (request time,
// then ID). The slice is shared: the caller must not change it.
func (c *grantCache) list() []model.Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sorted != nil || len(c.live) == 0 {
		return c.sorted
	}
	out := make([]model.Grant, 0, len(c.live))
	for _, g := range c.live {
		out = append(out, *g)
	}
	slices.SortFunc(out, compareStoreOrder)
	// Point at the new copy, so the one that held the grants before can go.
	for i := range out {
		c.live[out[i].ID] = &out[i]
	}
	c.sorted = out
	return out
}

// compareStoreOrder orders grants as the store lists them.
func compareStoreOrder(a, b model.Grant) int {
	return cmp.Or(a.RequestedAt.Compare(b.RequestedAt), cmp.Compare(a.ID, b.ID))
}
