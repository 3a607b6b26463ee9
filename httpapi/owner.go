package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/runstore"
)

// viewer is who a request acts for: which runs it may see and who owns the
// runs it makes.
type viewer struct {
	all     bool     // every run (authentication off, or an admin key)
	tenants []string // otherwise the stored tenants it may see
	owner   string   // the tenant of the runs it makes ("" for none)
	admin   bool     // operational detail (upstream errors) may be shown
}

// viewerOf returns the viewer of r. Runs made without a key are stored with
// the empty tenant and belong to AuthConfig.DefaultTenant.
func (s *Server) viewerOf(r *http.Request) viewer {
	if !s.cfg.Auth.Enabled {
		return viewer{all: true, admin: true}
	}
	id, ok := authkeys.IdentityFromContext(r.Context())
	if !ok {
		// A reader without a key, on a route opened by OpenReads.
		return viewer{tenants: []string{"", s.cfg.Auth.DefaultTenant}}
	}
	v := viewer{tenants: []string{id.Tenant}, owner: id.Tenant, admin: id.Can(authkeys.ScopeAdmin)}
	if id.Tenant == s.cfg.Auth.DefaultTenant {
		v.tenants = append(v.tenants, "")
	}
	v.all = v.admin
	return v
}

// sees reports whether v may see a run owned by tenant.
func (v viewer) sees(tenant string) bool { return v.all || slices.Contains(v.tenants, tenant) }

// filter restricts f to the runs v may see.
func (v viewer) filter(f runstore.Filter) runstore.Filter {
	if !v.all {
		f.Tenants = v.tenants
	}
	return f
}

// ownedRun returns the run with the given id if the request may see it. A
// run of another tenant is not found, exactly like a run that does not
// exist, so a key cannot learn which ids exist elsewhere.
func (s *Server) ownedRun(ctx context.Context, r *http.Request, id string) (runstore.Run, error) {
	run, err := s.cfg.Runs.Get(ctx, id)
	if err != nil {
		return run, storeError(err, "Run", id)
	}
	if !s.viewerOf(r).sees(run.Tenant) {
		return runstore.Run{}, notFound("Run", id)
	}
	return run, nil
}

// defaultTenantOnly refuses a request whose viewer does not see the default
// tenant's runs: live dyno data and the Jetstream integration belong to the
// server's operator, and the runs they make are the default tenant's.
func (s *Server) defaultTenantOnly(r *http.Request, what string) error {
	if s.viewerOf(r).sees("") {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden,
		Message: what + " belongs to the server's default tenant; this API key's tenant may not use it"}
}
