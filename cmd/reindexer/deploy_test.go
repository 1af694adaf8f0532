package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/reindexer/reindexer/probe"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.yaml.in/yaml/v2"
)

// deployDir is the repository's deploy/ directory, seen from this package.
const deployDir = "../../deploy"

// finalCommitTimeout bounds the commit after the drain on SIGTERM
// (consumer's shutdown); the grace period must cover drain plus commit.
const finalCommitTimeout = 15 * time.Second

// describing is a prometheus.Registerer that records the names of every
// metric registered with it, labelled or not, observed or not.
type describing struct {
	names map[string]bool
}

func (d *describing) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	for desc := range ch {
		if m := re.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describing) Unregister(prometheus.Collector) bool { return true }

// registeredMetrics returns every metric name the binary can export: the
// reindexer_* metrics, the build info, franz-go's kprom metrics under the
// reindexer_kafka prefix, and parity --watch's gauges.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	d := &describing{names: map[string]bool{}}
	metrics.New(d)
	registerBuildInfo(d)
	newParityGauges(d)
	probe.NewMetrics(d)
	kp := kprom.NewMetrics("reindexer_kafka", kprom.Registerer(d))
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.WithHooks(kp)) // dials nothing until used
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if !d.names["reindexer_writes_total"] || !d.names["reindexer_kafka_read_bytes_total"] || !d.names["reindexer_parity_drift"] {
		t.Fatalf("the registered names look incomplete: %v", d.names)
	}
	return d.names
}

// metricNames returns the reindexer_* metric names a PromQL expression uses,
// with histogram series suffixes removed.
func metricNames(expr string) []string {
	var out []string
	for _, n := range regexp.MustCompile(`\breindexer_[a-zA-Z0-9_]+`).FindAllString(expr, -1) {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(n, suf) && strings.HasSuffix(strings.TrimSuffix(n, suf), "_seconds") {
				n = strings.TrimSuffix(n, suf)
			}
		}
		out = append(out, n)
	}
	return out
}

// dashboardExprs returns every query of the Grafana dashboard, with the
// panel it belongs to.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "reindexer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("reindexer.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("the dashboard has no uid (provisioning would duplicate it)")
	}
	out := map[string]string{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			out[fmt.Sprintf("%s #%d", p.Title, i)] = tg.Expr
		}
	}
	return out
}

// alertRules returns alerts.yml's groups and every rule's expression.
func alertRules(t *testing.T) (any, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return raw["groups"], out
}

// TestDashboardAndAlertsUseRegisteredMetrics: every metric the Grafana
// dashboard and the alert rules query is one the code registers, and the
// issue's panels and alerts are all there.
func TestDashboardAndAlertsUseRegisteredMetrics(t *testing.T) {
	have := registeredMetrics(t)
	dash := dashboardExprs(t)
	_, alerts := alertRules(t)
	used := map[string]bool{}
	check := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: %q queries no reindexer metric", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !have[n] {
				t.Errorf("%s queries %s, which the code does not register", where, n)
			}
		}
	}
	for where, e := range dash {
		check("dashboard panel "+where, e)
	}
	for name, e := range alerts {
		check("alert "+name, e)
	}
	for _, want := range []string{
		"reindexer_writes_total", "reindexer_consumer_lag", "reindexer_bulk_latency_seconds", "reindexer_retries_total",
		"reindexer_dead_lettered_total", "reindexer_blocked", "reindexer_replay_remaining_records", "reindexer_parity_drift",
		"reindexer_throttle_limit", "reindexer_committed_offset", "reindexer_build_info",
	} {
		if !used[want] {
			t.Errorf("neither the dashboard nor the alerts show %s", want)
		}
	}
	for _, a := range []string{"ReindexerLagGrowing", "ReindexerNothingCommitted", "ReindexerBlocked", "ReindexerDeadLetters"} {
		if alerts[a] == "" {
			t.Errorf("alert %s is missing", a)
		}
	}
	// The check itself can fail: a made-up name is caught.
	if names := metricNames(`rate(reindexer_made_up_total[5m])`); have[names[0]] {
		t.Fatal("a made-up metric name counts as registered")
	}
}

// TestOperationsGuideListsEveryMetric: docs/operations.md names every
// metric the code registers (franz-go's reindexer_kafka_* as a family).
func TestOperationsGuideListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range registeredMetrics(t) {
		if strings.HasPrefix(name, "reindexer_kafka_") {
			name = "reindexer_kafka_*"
		}
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/operations.md does not list %s", name)
		}
	}
}

// TestAlertRules runs promtool on the rules and their unit tests
// (deploy/prometheus/alerts_test.yml). promtool comes with Debian's
// prometheus package, which .ci/run installs.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: apt-get install -y prometheus (.ci/run does this)")
	}
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(deployDir, "prometheus", "alerts.yml")},
		{"test", "rules", filepath.Join(deployDir, "prometheus", "alerts_test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// manifest is one Kubernetes object, decoded loosely.
type manifest struct {
	file string
	obj  map[string]any
}

func (m manifest) kind() string { return str(m.obj["kind"]) }
func (m manifest) name() string { return str(dig(m.obj, "metadata", "name")) }

// dig walks nested maps by keys.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// normalize turns YAML's map[any]any into map[string]any throughout.
func normalize(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := map[string]any{}
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	}
	return v
}

// loadManifests parses every YAML document under deploy/kubernetes.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.SetStrict(true) // duplicate keys are errors
		for {
			var doc any
			if err := dec.Decode(&doc); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if doc == nil {
				continue
			}
			out = append(out, manifest{file: filepath.Base(f), obj: normalize(doc).(map[string]any)})
		}
	}
	return out
}

// apiVersions returns the kinds the manifests may hold, with their API versions.
func apiVersions() map[string]string {
	return map[string]string{
		"StatefulSet": "apps/v1", "Deployment": "apps/v1", "Job": "batch/v1", "PodDisruptionBudget": "policy/v1",
		"Service": "v1", "ConfigMap": "v1", "ServiceAccount": "v1", "Secret": "v1",
		"ServiceMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
		"Kustomization": "kustomize.config.k8s.io/v1beta1",
	}
}

// The fields of a pod spec, a container and a probe the manifests may use,
// space-separated: a misspelt field (Kubernetes ignores unknown fields with
// a warning at best) fails the test.
const (
	podSpecFields = "serviceAccountName terminationGracePeriodSeconds securityContext containers volumes restartPolicy " +
		"affinity nodeSelector tolerations topologySpreadConstraints"
	containerFields = "name image args command env ports readinessProbe livenessProbe startupProbe resources securityContext volumeMounts"
	probeFields     = "httpGet initialDelaySeconds periodSeconds timeoutSeconds failureThreshold successThreshold"
)

func checkFields(t *testing.T, where string, obj any, fields string) {
	allowed := strings.Fields(fields)
	t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		t.Errorf("%s: not a mapping", where)
		return
	}
	for k := range m {
		if !contains(allowed, k) {
			t.Errorf("%s: unexpected field %q (allowed: %v)", where, k, allowed)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// commandFlags builds the flag set of a reindexer command.
func commandFlags(t *testing.T, name string) (*flag.FlagSet, func() error) {
	t.Helper()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	switch name {
	case "run":
		c := &RunCommand{}
		c.register(fs)
		return fs, func() error { return c.flags.validate(true) }
	case "replay":
		c := &ReplayCommand{}
		c.register(fs)
		return fs, func() error { return c.flags.validate(true) }
	case "parity":
		c := &ParityCommand{}
		c.register(fs)
		return fs, func() error { return nil }
	}
	t.Fatalf("unknown command %q", name)
	return nil, nil
}

// TestKubernetesManifests parses every manifest and checks it against the
// code: kinds and API versions, the fields of pod specs, the command line
// and environment of every container (parsed and validated by the
// command's own flags, with the ConfigMap's settings file), probe paths and
// ports, the grace period against --drain-timeout, and the selectors that
// tie the StatefulSet, Service, PodDisruptionBudget and ServiceMonitor.
func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t)
	versions := apiVersions()
	byKind := map[string][]manifest{}
	for _, m := range ms {
		want, ok := versions[m.kind()]
		if !ok {
			t.Errorf("%s: unexpected kind %q", m.file, m.kind())
			continue
		}
		if got := str(m.obj["apiVersion"]); got != want {
			t.Errorf("%s: %s has apiVersion %q, want %q", m.file, m.kind(), got, want)
		}
		if m.kind() != "Kustomization" && m.name() == "" {
			t.Errorf("%s: %s has no metadata.name", m.file, m.kind())
		}
		byKind[m.kind()] = append(byKind[m.kind()], m)
	}
	for _, k := range []string{"StatefulSet", "Job", "PodDisruptionBudget", "Service", "ServiceMonitor", "ConfigMap", "Kustomization"} {
		if len(byKind[k]) == 0 {
			t.Errorf("no %s manifest", k)
		}
	}
	if t.Failed() {
		return
	}

	// kustomization.yaml lists files that exist; the Jobs are applied on their own.
	for _, r := range byKind["Kustomization"][0].obj["resources"].([]any) {
		if _, err := os.Stat(filepath.Join(deployDir, "kubernetes", str(r))); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
	}

	// The settings file of the ConfigMap, written where the containers' --config can find it.
	cm := byKind["ConfigMap"][0]
	settings := str(dig(cm.obj, "data", "reindexer.yaml"))
	cfgPath := filepath.Join(t.TempDir(), "reindexer.yaml")
	if err := os.WriteFile(cfgPath, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}

	var workloads []manifest
	workloads = append(workloads, byKind["StatefulSet"]...)
	workloads = append(workloads, byKind["Job"]...)
	workloads = append(workloads, byKind["Deployment"]...)
	for _, w := range workloads {
		where := w.file
		spec := dig(w.obj, "spec", "template", "spec")
		checkFields(t, where+" pod spec", spec, podSpecFields)
		containers, _ := dig(spec, "containers").([]any)
		if len(containers) != 1 {
			t.Errorf("%s: %d containers, want 1", where, len(containers))
			continue
		}
		c := containers[0]
		checkFields(t, where+" container", c, containerFields)
		args := []string{}
		for _, a := range dig(c, "args").([]any) {
			args = append(args, str(a))
		}
		command := args[0]
		env := map[string]string{}
		envList, _ := dig(c, "env").([]any)
		for _, e := range envList {
			name := str(dig(e, "name"))
			switch {
			case dig(e, "value") != nil:
				env[name] = str(dig(e, "value"))
			case str(dig(e, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name":
				env[name] = "reindexer-0"
			default:
				env[name] = "from-a-secret-or-resource"
			}
			if strings.HasPrefix(name, envPrefix) {
				fs, _ := commandFlags(t, command)
				if name != envName(configFlag) && fs.Lookup(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "_", "-"))) == nil {
					t.Errorf("%s: environment variable %s sets no flag of reindexer %s", where, name, command)
				}
			}
		}
		for i, a := range args {
			if a == "/etc/reindexer/reindexer.yaml" {
				args[i] = cfgPath
			}
		}
		fs, validate := commandFlags(t, command)
		if err := parseFlags(fs, args[1:], func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s: reindexer %s rejects the manifest's arguments: %v", where, strings.Join(args, " "), err)
			continue
		}
		if err := validate(); err != nil {
			t.Errorf("%s: reindexer %s: %v", where, command, err)
		}
		if command == "parity" && w.kind() == "Job" {
			if str(dig(spec, "restartPolicy")) != "Never" {
				t.Errorf("%s: a podFailurePolicy needs restartPolicy Never", where)
			}
			for _, r := range dig(w.obj, "spec", "podFailurePolicy", "rules").([]any) {
				if cn := str(dig(r, "onExitCodes", "containerName")); cn != str(dig(c, "name")) {
					t.Errorf("%s: podFailurePolicy names container %q, the container is %q", where, cn, str(dig(c, "name")))
				}
			}
			continue
		}

		// Probes on the metrics port, at the paths serveMetrics serves.
		metricsAddr := fs.Lookup("metrics-addr").Value.String()
		_, port, _ := strings.Cut(metricsAddr, ":")
		ports := map[string]string{}
		portList, _ := dig(c, "ports").([]any)
		for _, p := range portList {
			ports[str(dig(p, "name"))] = str(dig(p, "containerPort"))
		}
		if ports["metrics"] != port || port == "" {
			t.Errorf("%s: container port metrics=%q, --metrics-addr %q", where, ports["metrics"], metricsAddr)
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
			pr := dig(c, probe)
			if pr == nil {
				if probe != "startupProbe" {
					t.Errorf("%s: no %s", where, probe)
				}
				continue
			}
			checkFields(t, where+" "+probe, pr, probeFields)
			if got := str(dig(pr, "httpGet", "path")); got != path {
				t.Errorf("%s: %s path %q, want %s", where, probe, got, path)
			}
			if got := str(dig(pr, "httpGet", "port")); got != "metrics" && got != port {
				t.Errorf("%s: %s port %q, want metrics", where, probe, got)
			}
			if ts := dig(pr, "timeoutSeconds"); ts == nil || time.Duration(ts.(int))*time.Second <= probeTimeout {
				t.Errorf("%s: %s timeoutSeconds %v must exceed the probe's own OpenSearch timeout %s", where, probe, ts, probeTimeout)
			}
		}
		// The grace period covers the drain and the final commit.
		if fs.Lookup("drain-timeout") == nil {
			continue
		}
		drain, err := parseDuration(fs.Lookup("drain-timeout").Value.String())
		if err != nil {
			t.Fatal(err)
		}
		grace := time.Duration(dig(spec, "terminationGracePeriodSeconds").(int)) * time.Second
		if grace <= drain+finalCommitTimeout {
			t.Errorf("%s: terminationGracePeriodSeconds %s does not cover --drain-timeout %s plus the final commit (%s)", where, grace, drain, finalCommitTimeout)
		}
	}

	// The StatefulSet's pods are static members named after themselves.
	sts := byKind["StatefulSet"][0]
	stsLabels := dig(sts.obj, "spec", "template", "metadata", "labels").(map[string]any)
	matches := func(sel any) bool {
		m, ok := sel.(map[string]any)
		if !ok || len(m) == 0 {
			return false
		}
		for k, v := range m {
			if stsLabels[k] != v {
				return false
			}
		}
		return true
	}
	if !matches(dig(sts.obj, "spec", "selector", "matchLabels")) {
		t.Error("statefulset: selector does not match its pod labels")
	}
	var instanceFromPod bool
	for _, e := range dig(sts.obj, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["env"].([]any) {
		if str(dig(e, "name")) == envName("instance-id") && str(dig(e, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name" {
			instanceFromPod = true
		}
	}
	if !instanceFromPod {
		t.Error("statefulset: REINDEXER_INSTANCE_ID is not the pod name (static membership)")
	}
	var svc manifest
	for _, s := range byKind["Service"] {
		if s.name() == str(dig(sts.obj, "spec", "serviceName")) {
			svc = s
		}
	}
	if svc.obj == nil {
		t.Fatalf("statefulset: serviceName %q names no Service", str(dig(sts.obj, "spec", "serviceName")))
	}
	if !matches(dig(svc.obj, "spec", "selector")) {
		t.Error("service: selector does not match the StatefulSet's pods")
	}
	if !matches(dig(byKind["PodDisruptionBudget"][0].obj, "spec", "selector", "matchLabels")) {
		t.Error("pdb: selector does not match the StatefulSet's pods")
	}
	sm := byKind["ServiceMonitor"][0]
	for k, v := range dig(sm.obj, "spec", "selector", "matchLabels").(map[string]any) {
		if dig(svc.obj, "metadata", "labels", k) != v {
			t.Errorf("servicemonitor: selector %s=%v does not match the Service's labels", k, v)
		}
	}
	svcPorts := map[string]bool{}
	for _, p := range dig(svc.obj, "spec", "ports").([]any) {
		svcPorts[str(dig(p, "name"))] = true
	}
	for _, ep := range dig(sm.obj, "spec", "endpoints").([]any) {
		if !svcPorts[str(dig(ep, "port"))] || str(dig(ep, "path")) != "/metrics" {
			t.Errorf("servicemonitor: endpoint %v is not the Service's metrics port at /metrics", ep)
		}
	}

	// The PrometheusRule holds exactly alerts.yml's rules.
	groups, _ := alertRules(t)
	for _, pr := range byKind["PrometheusRule"] {
		if got := dig(pr.obj, "spec", "groups"); !reflect.DeepEqual(normalize(groups), got) {
			t.Errorf("%s: spec.groups differ from deploy/prometheus/alerts.yml", pr.file)
		}
	}
	var kinds []string
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	t.Logf("checked %d objects: %v", len(ms), kinds)
}
