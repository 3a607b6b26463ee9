// Package webui is DynoAI's web UI for tuners: runs, upload, a run's
// heatmaps, calibrate (apply and rollback), live JetDrive data and the
// Jetstream poller, as plain HTML, CSS and JavaScript modules embedded in
// the binary (no build step, no network at run time).
//
// Handler serves the page at "/" and its assets under "/ui/". Every URL
// the page uses is relative to the page, so the UI works wherever it is
// mounted, next to the API (package httpapi serves both under its
// BasePath). The UI talks to the API with the browser's session cookie
// (POST api/session exchanges a key for it once), never with a key in a
// URL.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Assets returns the UI's files: index.html and the files it loads.
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	return sub
}

// contentSecurity allows the page only its own scripts, styles and API:
// no inline script, nothing from another origin, no framing.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the UI's handler: the page at "/" and the assets under
// "/ui/"; anything else is 404.
func Handler() http.Handler {
	files := Assets()
	static := http.StripPrefix("/ui/", http.FileServerFS(files))
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurity)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch {
		case r.URL.Path == "/":
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			if r.Method != http.MethodHead {
				_, _ = w.Write(index)
			}
		case strings.HasPrefix(r.URL.Path, "/ui/") && r.URL.Path != "/ui/" && r.URL.Path != "/ui/index.html":
			h.Set("Cache-Control", "no-cache")
			static.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
