package main

// Static checks of deploy/ (there is no Docker daemon in CI: the image is
// never built and the stack never started here), and the proof that every
// series the Grafana dashboard and the alert rules query is exported by this
// server once it has done some work.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/dynoai/dynoai/tune"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const deployDir = "../../deploy"

// sdkVars are variables a server container may set that knownVars does not
// list because the server's settings do not read them: the AWS SDK under
// gocloud.dev's s3blob reads them for DYNOAI_FILES_URL=s3://... .
var sdkVars = map[string]string{
	"AWS_ACCESS_KEY_ID":     "S3 credentials (AWS SDK default chain)",
	"AWS_SECRET_ACCESS_KEY": "S3 credentials (AWS SDK default chain)",
}

// readYAML decodes a YAML file (anchors and merge keys resolved).
func readYAML(t *testing.T, path string, v any) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, v), path)
	return data
}

// composeVar is one ${NAME...} of the compose file.
type composeVar struct {
	Name, Op, Arg string
}

var composeVarRE = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}`)

// composeVars lists the interpolations of compose text, refusing the
// unbraced $NAME form ($$ is a literal dollar).
func composeVars(text string) ([]composeVar, error) {
	var out []composeVar
	for i := 0; i < len(text); i++ {
		if text[i] != '$' {
			continue
		}
		if strings.HasPrefix(text[i:], "$$") {
			i++
			continue
		}
		m := composeVarRE.FindStringSubmatch(text[i:])
		if m == nil {
			line := strings.Count(text[:i], "\n") + 1
			return nil, fmt.Errorf("line %d: a $ that is not ${NAME...} (write $$ for a literal dollar)", line)
		}
		out = append(out, composeVar{Name: m[1], Op: m[2], Arg: m[3]})
		i += len(m[0]) - 1
	}
	return out, nil
}

// interpolate resolves ${...} in s as docker compose does, with env.
func interpolate(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if strings.HasPrefix(s[i:], "$$") {
			b.WriteByte('$')
			i++
			continue
		}
		m := composeVarRE.FindStringSubmatch(s[i:])
		require.NotNil(t, m, "bad interpolation in %q", s)
		v, set := env[m[1]]
		switch m[2] {
		case ":-":
			if v == "" {
				v = m[3]
			}
		case "-":
			if !set {
				v = m[3]
			}
		case ":?", "?":
			require.True(t, set && (v != "" || m[2] == "?"), "%s is required: %s", m[1], m[3])
		case ":+", "+":
			if v != "" || (m[2] == "+" && set) {
				v = m[3]
			} else {
				v = ""
			}
		}
		b.WriteString(v)
		i += len(m[0]) - 1
	}
	return b.String()
}

// envMap returns a service's environment in either compose form.
func envMap(t *testing.T, svc map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch e := svc["environment"].(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				out[k] = ""
				continue
			}
			out[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = v
		}
	default:
		t.Fatalf("environment of type %T", e)
	}
	return out
}

// isServer reports whether a compose service runs this server: it is built
// from deploy/Dockerfile.
func isServer(svc map[string]any) bool {
	b, _ := svc["build"].(map[string]any)
	return b != nil && b["dockerfile"] == "deploy/Dockerfile"
}

func hasPrefixAny(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestComposeFile checks deploy/compose.yaml and deploy/.env.example
// statically: the variables handed to the server are ones it reads, every
// variable compose interpolates is in .env.example (and nothing there is
// unused), and the stack is sane: every long-running service has a health
// check and a named volume, dependencies wait for health, images are pinned,
// at least two server replicas, bind-mounted files exist, and Prometheus
// scrapes every replica on its metrics port.
func TestComposeFile(t *testing.T) {
	var compose struct {
		Name     string                    `yaml:"name"`
		Services map[string]map[string]any `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	raw := readYAML(t, filepath.Join(deployDir, "compose.yaml"), &compose)
	envData, err := os.ReadFile(filepath.Join(deployDir, ".env.example"))
	require.NoError(t, err)
	dotenv, err := parseEnvFile("deploy/.env.example", envData)
	require.NoError(t, err)
	for i, line := range strings.Split(string(envData), "\n") {
		assert.False(t, regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*=\s+#`).MatchString(line),
			"deploy/.env.example line %d: docker compose reads a comment after an empty value as the value", i+1)
	}
	require.NotEmpty(t, compose.Services)

	// Interpolation: each ${VAR} has an entry in .env.example, each entry is
	// used, each required one (${VAR:?...}) has a value there.
	vars, err := composeVars(string(raw))
	require.NoError(t, err)
	used := map[string]bool{}
	for _, v := range vars {
		used[v.Name] = true
		_, listed := dotenv[v.Name]
		assert.True(t, listed, "compose.yaml uses ${%s}, which deploy/.env.example does not list", v.Name)
		if v.Op == ":?" {
			assert.NotEmpty(t, dotenv[v.Name], "%s is required by compose.yaml but empty in deploy/.env.example", v.Name)
		}
	}
	for k := range dotenv {
		assert.True(t, used[k], "deploy/.env.example sets %s, which compose.yaml never uses", k)
	}

	// The servers: every variable they get is one they read; a variable of
	// .env.example named like a server variable must be a known one and
	// must reach a server under its own name (else it would be ignored).
	var servers []string
	handed := map[string]bool{}
	replicaIDs := map[string]string{}
	for name, svc := range compose.Services {
		if !isServer(svc) {
			continue
		}
		servers = append(servers, name)
		env := envMap(t, svc)
		for k, v := range env {
			_, known := knownVars[k]
			_, sdk := sdkVars[k]
			assert.True(t, known || sdk, "service %s sets %s, which the server does not read (knownVars)", name, k)
			if vs, _ := composeVars(v); len(vs) == 1 && vs[0].Name == k {
				handed[k] = true
			}
		}
		id := env["DYNOAI_REPLICA_ID"]
		require.NotEmpty(t, id, "service %s has no DYNOAI_REPLICA_ID", name)
		assert.Empty(t, replicaIDs[id], "replica id %s given twice", id)
		replicaIDs[id] = name
		assert.Equal(t, name, id, "the replica id is the service name, as Prometheus labels it")
		assert.Equal(t, "true", env["API_AUTH_ENABLED"], "%s: a replica reachable from the network needs keys", name)
	}
	for k := range dotenv {
		if _, known := knownVars[k]; known || hasPrefixAny(k, strictPrefixes) {
			assert.True(t, known, "deploy/.env.example sets %s, which the server does not read", k)
			assert.True(t, handed[k], "deploy/.env.example sets %s but compose.yaml hands it to no server as %s: ${%s...}", k, k, k)
		}
	}
	replicas := 0
	for _, name := range servers {
		n := 1
		if d, ok := compose.Services[name]["deploy"].(map[string]any); ok && d["replicas"] != nil {
			n = d["replicas"].(int)
		}
		replicas += n
	}
	assert.GreaterOrEqual(t, replicas, 2, "at least two server replicas")

	// Health, dependencies, volumes, images, ports.
	oneShot := func(name string) bool { return compose.Services[name]["restart"] == "no" }
	usedVolumes := map[string]bool{}
	for name, svc := range compose.Services {
		dependedOn := false
		for other, o := range compose.Services {
			if deps, ok := o["depends_on"].(map[string]any); ok && deps[name] != nil && other != name {
				dependedOn = true
			}
		}
		hc, _ := svc["healthcheck"].(map[string]any)
		if oneShot(name) {
			assert.True(t, dependedOn, "one-shot service %s: nothing waits for it", name)
		} else {
			require.NotNil(t, hc, "service %s has no healthcheck", name)
			assert.NotEqual(t, true, hc["disable"], "service %s disables its healthcheck", name)
			test, _ := hc["test"].([]any)
			require.GreaterOrEqual(t, len(test), 2, "service %s: healthcheck test %v", name, hc["test"])
			assert.Contains(t, []any{"CMD", "CMD-SHELL"}, test[0], name)
			for _, k := range []string{"interval", "timeout", "retries"} {
				assert.NotNil(t, hc[k], "service %s: healthcheck without %s", name, k)
			}
		}
		if deps := svc["depends_on"]; deps != nil {
			m, ok := deps.(map[string]any)
			require.True(t, ok, "service %s: depends_on must be the long form with conditions", name)
			for dep, d := range m {
				require.Contains(t, compose.Services, dep, "service %s depends on unknown %s", name, dep)
				cond := d.(map[string]any)["condition"]
				if oneShot(dep) {
					assert.Equal(t, "service_completed_successfully", cond, "%s on %s", name, dep)
				} else {
					assert.Equal(t, "service_healthy", cond, "%s on %s", name, dep)
				}
			}
		}
		named := 0
		vols, _ := svc["volumes"].([]any)
		for _, v := range vols {
			spec, ok := v.(string)
			require.True(t, ok, "service %s: use the short volume syntax", name)
			src, _, _ := strings.Cut(spec, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				_, err := os.Stat(filepath.Join(deployDir, src))
				assert.NoError(t, err, "service %s mounts %s", name, src)
				continue
			}
			named++
			usedVolumes[src] = true
			_, declared := compose.Volumes[src]
			assert.True(t, declared, "service %s: volume %s is not declared", name, src)
		}
		if !oneShot(name) {
			assert.Positive(t, named, "service %s keeps no data in a named volume", name)
		}
		image, _ := svc["image"].(string)
		require.NotEmpty(t, image, "service %s has no image", name)
		image = interpolate(t, image, dotenv)
		slash := strings.LastIndex(image, "/")
		colon := strings.LastIndex(image, ":")
		require.Greater(t, colon, slash, "service %s: image %s has no tag", name, image)
		assert.NotEqual(t, "latest", image[colon+1:], "service %s: image %s is not pinned", name, image)
		ports, _ := svc["ports"].([]any)
		for _, p := range ports {
			assert.True(t, strings.HasPrefix(fmt.Sprint(p), "127.0.0.1:"), "service %s publishes %v beyond this host", name, p)
		}
	}
	for v := range compose.Volumes {
		assert.True(t, usedVolumes[v], "volume %s is declared but unused", v)
	}

	// The servers' health check is the binary the image ships, and
	// Prometheus scrapes each server on its metrics port.
	df, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	var targets []string
	for _, name := range servers {
		test := compose.Services[name]["healthcheck"].(map[string]any)["test"].([]any)
		assert.Contains(t, string(df), "COPY --from=build /out/dynoai-healthcheck "+fmt.Sprint(test[1]), "%s's health check", name)
		port := envMap(t, compose.Services[name])["PROMETHEUS_METRICS_PORT"]
		require.NotEmpty(t, port, "%s serves no metrics port", name)
		targets = append(targets, name+":"+port)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus", "prometheus.yml"), &prom)
	var scraped []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "dynoai" {
			for _, s := range sc.StaticConfigs {
				scraped = append(scraped, s.Targets...)
			}
		}
	}
	assert.ElementsMatch(t, targets, scraped, "Prometheus scrapes every replica")
	assert.Equal(t, []string{"alerts.yml"}, prom.RuleFiles)
}

// TestDockerfile checks deploy/Dockerfile statically: a multi-stage build
// on the Go version of go.mod with pinned base images, the server built with
// cgo and linked statically, a runtime stage that is not root, and a
// HEALTHCHECK on the binary it ships.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if s := strings.TrimSpace(l); s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	args := map[string]string{}
	var stages [][]string // instructions of each stage, FROM first
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case "FROM":
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], l)
		}
	}
	require.GreaterOrEqual(t, len(stages), 2, "a multi-stage build")

	goMod, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	require.NotNil(t, goVersion)
	assert.Equal(t, string(goVersion[1]), args["GO_VERSION"], "the builder's Go is go.mod's")

	for _, st := range stages {
		image := strings.Fields(st[0])[1]
		for k, v := range args {
			image = strings.ReplaceAll(image, "${"+k+"}", v)
		}
		slash, colon := strings.LastIndex(image, "/"), strings.LastIndex(image, ":")
		require.Greater(t, colon, slash, "base image %s has no tag", image)
		assert.NotEqual(t, "latest", image[colon+1:], "base image %s is not pinned", image)
	}
	build := strings.Join(stages[0], "\n")
	assert.Contains(t, build, "CGO_ENABLED=1 go build", "go-sqlite3 needs cgo")
	assert.Contains(t, build, "-linkmode external -extldflags '-static'")
	assert.Contains(t, build, "sqlite_omit_load_extension netgo osusergo")
	assert.Contains(t, build, "-o /out/dynoai-server ./examples/server")
	assert.Contains(t, build, "-o /out/dynoai-healthcheck ./deploy/healthcheck")

	final := stages[len(stages)-1]
	var user, health, entry string
	for _, l := range final {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "USER":
			user = rest
		case "HEALTHCHECK":
			health = rest
		case "ENTRYPOINT":
			entry = rest
		}
	}
	require.NotEmpty(t, user, "the runtime stage sets USER")
	name, _, _ := strings.Cut(user, ":")
	assert.NotContains(t, []string{"root", "0"}, name, "the server does not run as root")
	assert.Contains(t, health, `CMD ["/usr/local/bin/dynoai-healthcheck"]`)
	assert.Equal(t, `["/usr/local/bin/dynoai-server"]`, entry)
	for _, want := range []string{"COPY --from=build /out/dynoai-server /usr/local/bin/dynoai-server",
		"COPY --from=build /out/dynoai-healthcheck /usr/local/bin/dynoai-healthcheck"} {
		assert.Contains(t, final, want)
	}
}

// promqlKeywords are identifiers of PromQL that are not metric names.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

var (
	promqlStringRE   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchersRE = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRangeRE    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGroupingRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlOffsetRE   = regexp.MustCompile(`\boffset\s+-?[0-9a-zA-Z_$]+`)
	labelValuesRE    = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
)

// promqlMetricNames returns the metric names an expression selects:
// identifiers used bare or before a label matcher or range, not functions,
// keywords, label names (in matchers and grouping clauses), Grafana
// variables or numbers. A Grafana label_values(selector, label) query
// yields its selector's metric.
func promqlMetricNames(expr string) []string {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	s := promqlStringRE.ReplaceAllString(expr, `""`)
	s = promqlMatchersRE.ReplaceAllString(s, "{}")
	s = promqlRangeRE.ReplaceAllString(s, "[]")
	s = promqlGroupingRE.ReplaceAllString(s, " ")
	s = promqlOffsetRE.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var out []string
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// A number, with its exponent or hex digits, or a duration.
			for i < len(s) && (isIdent(s[i], false) || s[i] == '.' ||
				(s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E')) {
				i++
			}
		case c == '$':
			for i++; i < len(s) && isIdent(s[i], false); i++ {
			}
		case isIdent(c, true):
			j := i
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n') {
				k++
			}
			function := k < len(s) && s[k] == '('
			if !function && !promqlKeywords[word] && !seen[word] {
				seen[word] = true
				out = append(out, word)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="dynoai"} == 0`, []string{"up"}},
		{`absent(up{job="dynoai"} == 1)`, []string{"up"}},
		{`sum by (le, endpoint) (rate(x_bucket{a="b",c=~"d{1,2}"}[5m]))`, []string{"x_bucket"}},
		{`histogram_quantile(0.95, sum(rate(x_bucket[$__rate_interval])) by (le))`, []string{"x_bucket"}},
		{`a / on(instance) group_left(version, env) b`, []string{"a", "b"}},
		{`a_total offset 1h > bool 1e3 and b unless ignoring(x) c or 0x1F`, []string{"a_total", "b", "c"}},
		{"60 * sum(rate(m{s=\"}{[\"}[1m]))", []string{"m"}},
		{`max_over_time(g[10m:1m]) - g2 - .5 - 2.5e-3`, []string{"g", "g2"}},
		{`label_values(dynoai_app_info{job="dynoai"}, instance)`, []string{"dynoai_app_info"}},
		{"rate(\n  x_sum{i=~\"$instance\"}[5m]\n)\n/\nx_count", []string{"x_sum", "x_count"}},
		{`time() - ns:recorded:rule`, []string{"ns:recorded:rule"}},
	} {
		assert.Equal(t, tc.want, promqlMetricNames(tc.expr), tc.expr)
	}
}

// deploySeries returns the series names the dashboard and the alert rules
// query, each with where it is used.
func deploySeries(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(where, expr string) {
		names := promqlMetricNames(expr)
		require.NotEmpty(t, names, "%s: no metric in %q", where, expr)
		for _, n := range names {
			out[n] = append(out[n], where)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus", "alerts.yml"), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("alert "+r.Alert, r.Expr)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query struct {
					Query string `json:"query"`
				} `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana", "dashboard.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &dash))
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			add("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		add("variable "+v.Name, v.Query.Query)
	}
	return out
}

// notExported are series the dashboard or the rules query that the server
// does not export after ordinary work, with the reason. Keep it short.
var notExported = map[string]string{
	"up": "Prometheus records it for every scrape target",
	"dynoai_http_request_exceptions_total": "counts handler panics, created by the first one; no route panics on purpose " +
		"(metrics' TestHTTPMiddlewarePanics drives it)",
}

// exportedNames lists the series names of an exposition: a counter or
// gauge by its name, a histogram by its _bucket, _sum and _count, a
// summary by its name, _sum and _count.
func exportedNames(fams map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for name, f := range fams {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

func TestExportedNames(t *testing.T) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(`# TYPE a_total counter
a_total 1
# TYPE h histogram
h_bucket{le="+Inf"} 1
h_sum 1
h_count 1
# TYPE g gauge
g 2
`))
	require.NoError(t, err)
	got := exportedNames(fams)
	assert.Equal(t, map[string]bool{"a_total": true, "h_bucket": true, "h_sum": true, "h_count": true, "g": true}, got)
	assert.False(t, got["h"], "a classic histogram has no bare series")
}

// loopbackMulticast reports whether JetDrive can run on loopback here,
// turning multicast on as root (or failing when it is required).
func loopbackMulticast(t *testing.T) bool {
	ifi, err := jetdrive.ResolveInterface("loopback")
	require.NoError(t, err)
	if ifi.Flags&net.FlagMulticast != 0 {
		return true
	}
	if os.Geteuid() == 0 || os.Getenv("DYNOAI_REQUIRE_MULTICAST") == "1" {
		jetdrivetest.EnsureLoopbackMulticast(t) // on, or the test ends
		return true
	}
	return false
}

// TestDeploySeriesExported runs this server as deploy/compose.yaml does in
// the ways that matter to its metrics (metrics on, Jetstream polled,
// JetDrive heard), makes it work (an upload of the shipped sample log
// analyzed, a Jetstream sync against the fake Jetstream, a simulated dyno
// on loopback multicast, a live stream open, a health check), scrapes
// /metrics, and requires every series the Grafana dashboard and the alert
// rules query to be there.
func TestDeploySeriesExported(t *testing.T) {
	want := deploySeries(t)
	multicast := loopbackMulticast(t)

	js, err := jetstreamtest.NewStub(context.Background(), jetstreamtest.Options{APIKey: "js-key-0123456789"})
	require.NoError(t, err)
	defer js.Close()
	env := map[string]string{
		"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_PORT": "0",
		"PROMETHEUS_METRICS_ENABLED": "true", "DYNOAI_ENV": "production", "LOG_FORMAT": "json",
		"JETSTREAM_ENABLED": "true", "JETSTREAM_API_URL": js.URL, "JETSTREAM_API_KEY": "js-key-0123456789",
		"JETSTREAM_POLL_INTERVAL": "3600",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if multicast {
		port := jetdrivetest.Port(t)
		env["JETDRIVE_ENABLED"], env["JETDRIVE_IFACE"], env["JETDRIVE_PORT"] = "true", "loopback", fmt.Sprint(port)
		// A simulated dyno streaming a pull on the server's JetDrive network.
		prov, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Net: jetdrivetest.Net(port), Name: "Dyno 250i",
			NegotiateWindow: 100 * time.Millisecond}, nil)
		require.NoError(t, err)
		defer prov.Close()
		sc, err := tune.ScenarioByName("demo", 1)
		require.NoError(t, err)
		sim, err := sc.Simulator()
		require.NoError(t, err)
		go func() { _ = prov.Stream(ctx, sim, jetdrive.StreamOptions{Rate: 100}) }()
	} else {
		t.Log("loopback has no multicast: the JetDrive series are not required (run as root or set DYNOAI_REQUIRE_MULTICAST=1)")
	}
	url, stop := start(t, env)
	defer func() { require.NoError(t, stop()) }()

	get := func(path string) (int, []byte) {
		res, err := http.Get(url + path)
		require.NoError(t, err)
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.Bytes()
	}
	// The shipped sample log, uploaded and analyzed.
	sample, err := os.ReadFile("../../testdata/sample_pulls.csv")
	require.NoError(t, err)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "sample_pulls.csv")
	require.NoError(t, err)
	_, _ = fw.Write(sample)
	require.NoError(t, mw.Close())
	res, err := http.Post(url+"/api/analyze", mw.FormDataContentType(), &body)
	require.NoError(t, err)
	var acc map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&acc))
	res.Body.Close()
	require.Equal(t, 202, res.StatusCode, "%v", acc)
	require.Eventually(t, func() bool {
		_, b := get("/api/status/" + acc["run_id"].(string))
		return bytes.Contains(b, []byte(`"status":"completed"`))
	}, 60*time.Second, 50*time.Millisecond, "the upload is analyzed")

	// A Jetstream sync: the stub's runs are listed and analyzed.
	res, err = http.Post(url+"/api/jetstream/sync", "application/json", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	code, _ := get("/api/health/ready") // the storage checks
	require.Equal(t, 200, code)
	if multicast {
		require.Eventually(t, func() bool {
			_, b := get("/api/jetdrive/live")
			return bytes.Contains(b, []byte(`"rpm":`)) && !bytes.Contains(b, []byte(`"values":null`))
		}, 20*time.Second, 50*time.Millisecond, "the server hears the simulated dyno")
	}
	// A tuner following the live data.
	streamCtx, endStream := context.WithCancel(ctx)
	defer endStream()
	req, _ := http.NewRequestWithContext(streamCtx, "GET", url+"/api/jetdrive/live/stream", nil)
	if multicast {
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
	}

	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		code, b := get("/metrics")
		require.Equal(t, 200, code)
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = p.TextToMetricFamilies(bytes.NewReader(b))
		require.NoError(t, err)
		return value(fams, "dynoai_jetstream_runs_total", "status", "complete") >= 1 &&
			value(fams, "dynoai_analysis_jobs_total", "event", "completed") >= 1 && // recorded just after the commit
			(!multicast || value(fams, "dynoai_active_sessions") == 1)
	}, 30*time.Second, 100*time.Millisecond, "the Jetstream runs are processed and the live session counted")

	exported := exportedNames(fams)
	var missing []string
	for name, where := range want {
		if why, ok := notExported[name]; ok {
			t.Logf("%s not required: %s", name, why)
			continue
		}
		if !multicast && strings.HasPrefix(name, "dynoai_jetdrive_") {
			continue
		}
		if !exported[name] {
			slices.Sort(where)
			missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(slices.Compact(where), "; ")))
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "queried by deploy/ but not exported after an analysis")
	t.Logf("%d series names queried by deploy/, %d of them the server's", len(want), len(want)-len(notExported))

	// The work shows in the values, not only in the names.
	assert.Equal(t, 1.0, value(fams, "dynoai_analysis_total", "status", "success", "source", "upload"))
	assert.GreaterOrEqual(t, value(fams, "dynoai_analysis_total", "status", "success", "source", "jetstream"), 1.0)
	assert.GreaterOrEqual(t, value(fams, "dynoai_jetstream_poll_duration_seconds"), 2.0, "the first poll and the sync")
	assert.GreaterOrEqual(t, value(fams, "dynoai_jetstream_runs_total", "status", "pending"), 1.0)
	assert.GreaterOrEqual(t, value(fams, "dynoai_jetstream_runs_total", "status", "processing"), 1.0)
	assert.GreaterOrEqual(t, value(fams, "dynoai_jetstream_runs_total", "status", "error"), 1.0, "the stub's run without MAP")
	assert.Equal(t, 1.0, value(fams, "dynoai_storage_up", "component", "database"))
}

// value returns the value of the series of fams with the given name and
// labels (a histogram's count), or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

// TestGrafanaProvisioning checks the dashboard against its provisioning:
// every query panel reads the provisioned Prometheus by its uid, panel ids
// are unique, panels fit the 24-column grid without overlapping, and the
// dashboard provider reads the directory compose.yaml mounts it in.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(deployDir, "grafana", "provisioning", "datasources", "prometheus.yaml"), &ds)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)
	assert.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL, "the compose service")
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(deployDir, "grafana", "provisioning", "dashboards", "dynoai.yaml"), &prov)
	require.Len(t, prov.Providers, 1)
	var compose struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, filepath.Join(deployDir, "compose.yaml"), &compose)
	assert.Contains(t, compose.Services["grafana"].Volumes,
		"./grafana/dashboard.json:"+prov.Providers[0].Options.Path+"/dynoai.json:ro")

	type panel struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			Expr       string `json:"expr"`
			RefID      string `json:"refId"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	}
	var dash struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana", "dashboard.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &dash))
	assert.NotEmpty(t, dash.UID)
	ids := map[int]bool{}
	var placed []panel
	for _, p := range dash.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		g := p.GridPos
		assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "panel %q at %+v", p.Title, g)
		for _, q := range placed {
			h := q.GridPos
			overlap := g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H
			assert.False(t, overlap, "panels %q and %q overlap", p.Title, q.Title)
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		assert.Equal(t, ds.Datasources[0].UID, p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			assert.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			assert.Equal(t, ds.Datasources[0].UID, tg.Datasource.UID, "panel %q", p.Title)
			assert.False(t, refs[tg.RefID], "panel %q: refId %s twice", p.Title, tg.RefID)
			refs[tg.RefID] = true
		}
	}
}

// TestAlertRulesAreTested: every alert has a severity, a summary and a
// description, and is evaluated by alerts_test.yml (promtool runs the
// tests themselves, in .ci/promtool.sh).
func TestAlertRulesAreTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus", "alerts.yml"), &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus", "alerts_test.yml"), &tests)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			assert.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
			assert.NotEmpty(t, r.Annotations["summary"], r.Alert)
			assert.NotEmpty(t, r.Annotations["description"], r.Alert)
			assert.True(t, fires[r.Alert], "alerts_test.yml never shows %s firing", r.Alert)
			assert.True(t, silent[r.Alert], "alerts_test.yml never shows %s silent", r.Alert)
		}
	}
	assert.GreaterOrEqual(t, n, 8)
}
